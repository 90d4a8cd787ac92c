# The strata image (agent and processor). The sources run through tsx, so no build stage.
FROM node:20-bookworm-slim
WORKDIR /opt/strata
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY bin ./bin
COPY cli ./cli
COPY lib ./lib
COPY schemas ./schemas
COPY collectors ./collectors
COPY agent ./agent
COPY processors ./processors
COPY sinks ./sinks
COPY stack ./stack
USER root
ENTRYPOINT ["node", "/opt/strata/bin/strata.js"]
CMD ["--help"]
