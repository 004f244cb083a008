# labtrace: one image for every part; the command picks it (server, gateway, sim, lab).
#   docker build -t labtrace .
#   docker run --rm labtrace server --config /path/in/container/server.yaml
# docker-compose.yml starts the server and the gateway through deploy/compose/server-start.sh and
# gateway-start.sh (the gateway's enrollment on its first start), which the image carries under /app.

# --- build: compile better-sqlite3 (node-gyp) if no prebuilt binary fits, the TypeScript and the dashboard
FROM node:24-bookworm-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The manifests first, so that the dependency layer is reused while only sources change.
COPY package.json package-lock.json ./
COPY protocols/package.json protocols/
COPY device-sim/package.json device-sim/
COPY gateway/package.json gateway/
COPY server/package.json server/
COPY dashboard/package.json dashboard/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
  && npm prune --omit=dev --no-audit --no-fund

# --- runtime: the built workspace, owned by root and run as the unprivileged `node` user
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# The whole built workspace: the workspace packages are linked from node_modules/@labtrace.
COPY --from=build /app ./
# /data is where the server and the gateway keep their state, and /keys where the nodes of
# deploy/cluster keep the lab's shared log and certificate keys; a named volume mounted there
# takes over this owner, so the `node` user can write to it.
RUN mkdir -p /data /keys && chown node:node /data /keys
USER node
EXPOSE 8080 1883
ENTRYPOINT ["node", "bin/labtrace.js"]
CMD ["help"]
