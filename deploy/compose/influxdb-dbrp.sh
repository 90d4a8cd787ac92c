#!/bin/bash
# Run once by the influxdb:2.x image after its initial setup (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml; the image exports the IDs it created).
# InfluxQL queries (the Grafana dashboards, docs/schema.md) name a database and retention policy;
# InfluxDB 2.x answers them only through a DBRP mapping to a bucket. This maps database "strata",
# retention policy "autogen" (the default) to the bucket the processor writes.
set -euo pipefail
influx v1 dbrp create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db "${DOCKER_INFLUXDB_INIT_BUCKET}" \
  --rp autogen \
  --default
