# The strata image (agent and processor). A build stage bundles the CLI with esbuild (`npm run
# build` -> dist/strata.mjs); the image runs that bundle with plain node (no tsx loader: ≈ 40 MB
# less RSS per process, see docs/agent.md "Cost"). node_modules (production only) stay external.
#
# BASE is any image with node ≥ 20.19 and npm on PATH and a POSIX sh. The default is the official
# one; test/integration/image.test.ts builds with a base imported offline from this machine's own
# Node runtime (no registry is reachable there), so what it tests is this file as users build it.
#
#   docker build -t strata:latest .
#   docker build --build-arg BASE=my-registry/node:20 -t strata:latest .
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The whole source tree (.dockerignore leaves out tests, test data, node_modules): the bundle
# follows every import from cli/main.ts, so listing folders one by one broke the build whenever
# the CLI gained one.
COPY . .
RUN npm run build

FROM ${BASE}
WORKDIR /opt/strata
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# The bundle, its launcher, and the assets the bundle finds next to their source location
# (dist/../stack/..., dist/../collectors/...): one layer.
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /src/stack/install-apt.sh ./stack/install-apt.sh
COPY --from=build /src/stack/qemu ./stack/qemu
COPY --from=build /src/collectors/guest/strata-guest-agent.sh ./collectors/guest/strata-guest-agent.sh
USER root
# No cli/ sources in the image, so bin/strata.js runs dist/strata.mjs; STRATA_BUNDLE=1 says it too.
ENV STRATA_BUNDLE=1
ENTRYPOINT ["node", "/opt/strata/bin/strata.js"]
CMD ["--help"]
