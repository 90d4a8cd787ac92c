#!/usr/bin/env node
// The `strata` command. The sources are TypeScript run through tsx's loader, so there is no build
// step between editing and running (tsx caches its transforms, so start-up stays ~0.3 s).
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
