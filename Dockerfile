# The strata image (agent and processor). A build stage bundles the CLI with esbuild (`npm run
# build` -> dist/strata.mjs); the image runs that bundle with plain node (no tsx loader: ≈ 40 MB
# less RSS per process, see docs/agent.md "Cost"). node_modules (production only) stay external.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY bin ./bin
COPY cli ./cli
COPY lib ./lib
COPY schemas ./schemas
COPY collectors ./collectors
COPY agent ./agent
COPY processors ./processors
COPY sinks ./sinks
COPY stack ./stack
COPY scripts ./scripts
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /opt/strata
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY bin ./bin
COPY --from=build /src/dist ./dist
# Assets the bundle finds next to their source location (dist/../stack/..., dist/../collectors/...).
COPY stack/install-apt.sh ./stack/install-apt.sh
COPY stack/qemu ./stack/qemu
COPY collectors/guest/strata-guest-agent.sh ./collectors/guest/strata-guest-agent.sh
USER root
# No cli/ sources in the image, so bin/strata.js runs dist/strata.mjs; STRATA_BUNDLE=1 says it too.
ENV STRATA_BUNDLE=1
ENTRYPOINT ["node", "/opt/strata/bin/strata.js"]
CMD ["--help"]
