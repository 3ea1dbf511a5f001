# ratls-proxy: the attested TLS reverse proxy (`ratls serve`).
# Runs the TypeScript sources through tsx (a runtime dependency), so there is no build step;
# the first stage only installs production dependencies.

FROM node:22-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:22-slim
# /app belongs to root; the simulated world (--simulate/--demo only) lives in node's home.
ENV NODE_ENV=production \
    RATLS_LISTEN=0.0.0.0:8443 \
    RATLS_SIM_DIR=/home/node/.ratls/sim
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY certs ./certs
COPY config ./config
# The image runs as the unprivileged "node" user. On a real TDX guest the configfs-tsm report
# directory is root-owned, so deploy/compose.yaml runs it as uid 0 with every capability dropped.
USER node
EXPOSE 8443
# Orchestrators send SIGTERM; ratls serve then drains in-flight streams (shutdown.drainTimeout).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD node -e "require('https').get({host:'127.0.0.1',port:(process.env.RATLS_LISTEN||'').split(':').pop()||8443,path:'/readyz',rejectUnauthorized:false},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
ENTRYPOINT ["node", "bin/ratls", "serve"]
CMD []
