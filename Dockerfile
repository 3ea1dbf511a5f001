# ratls-proxy: the attested TLS reverse proxy (`ratls serve`).
# Runs the TypeScript sources through tsx (a runtime dependency), so there is no build step;
# the first stage only installs production dependencies. See docs/deploy.md.

# The official image; the container test substitutes a locally built equivalent (no registry there).
ARG BASE_IMAGE=node:22-slim

FROM ${BASE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script (esbuild, under tsx, ships its binary
# as an optional dependency package); checked by running the CMD after the same install.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${BASE_IMAGE}
# State (simulated world, collateral cache) lives in /var/lib/ratls; a named volume mounted there
# starts with this owner and mode. Owner "node" (the image's user), group 0 with the same rights:
# deploy/compose.yaml runs as uid 0 with every capability dropped (configfs-tsm needs uid 0), and
# without CAP_DAC_OVERRIDE uid 0 gets only the group bits here. Nobody else gets anything.
# The process makes sim/ and collateral/ itself, 0700 and its own. /app stays root-owned (read-only code).
ENV NODE_ENV=production \
    RATLS_LISTEN=0.0.0.0:8443 \
    RATLS_SIM_DIR=/var/lib/ratls/sim \
    RATLS_COLLATERAL_CACHE_DIR=/var/lib/ratls/collateral
RUN mkdir -p /var/lib/ratls && chown node:0 /var/lib/ratls && chmod 0770 /var/lib/ratls
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
# /readyz answers 503 while draining. The certificate is self-signed RA-TLS, hence no CA check here.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "require('https').get({host:'127.0.0.1',port:(process.env.RATLS_LISTEN||'').split(':').pop()||8443,path:'/readyz',rejectUnauthorized:false,timeout:4000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/ratls", "serve"]
CMD []
