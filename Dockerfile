# One image for every Gatehouse service; the command selects the service:
#   docker run gatehouse policy        (node services/policy/dist/main.js)
#   docker run gatehouse listener --config /etc/gatehouse/gatehouse.yaml
# Services: idp, demo-db, policy, audit, listener, api. `gatehouse` runs the CLI.

# ---- build: install everything, compile TypeScript, drop dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund \
 && npx tsc -b tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime ----
FROM node:20-bookworm-slim
# openssl: the postgres listener generates a development TLS certificate when
# listeners.postgres.tls.cert/key are not configured.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    GATEHOUSE_CONFIG=/etc/gatehouse/gatehouse.yaml \
    GATEHOUSE_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app /app
RUN mkdir -p /data /etc/gatehouse && chown -R node:node /data
USER node
VOLUME ["/data"]
ENTRYPOINT ["/app/scripts/container-entrypoint.sh"]
CMD ["api"]
