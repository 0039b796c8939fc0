# syntax=docker/dockerfile:1
# portway node agent image: Debian bookworm, so the iptables/ipset/conntrack the agent drives are the
# packages the tests use; Node.js from the official node image (Debian's nodejs is 18). Why Node 24 and
# this shape: docs/adr/0003-image.md. CI assembles the same runtime filesystem without a Docker engine
# (hack/image/assemble-rootfs.ts reads this file): keep the runtime stage to the instructions it knows.
ARG NODE_VERSION=24.22.3

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
# node-gyp builds the addon against the headers this image ships (/usr/local/include/node) instead of
# downloading a header tarball.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
RUN npm ci --no-fund --no-audit
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY native ./native
COPY src ./src
COPY hack/image/trim-node-modules.sh ./hack/image/
RUN npm run build \
    && npx --no-install node-gyp rebuild -C native/arp \
    && npm prune --omit=dev --no-fund --no-audit \
    && hack/image/trim-node-modules.sh node_modules

# The runtime: Debian's slim base, the tools of hack/image/runtime-packages, the node binary alone
# (no npm, corepack or headers), production node_modules, the compiled agent and the addon.
FROM debian:bookworm-slim
RUN --mount=type=bind,source=hack/image/runtime-packages,target=/tmp/runtime-packages \
    apt-get update \
    && apt-get install -y --no-install-recommends $(grep -v '^#' /tmp/runtime-packages) \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /opt/portway
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
COPY --from=build /src/native/arp/build/Release/arp.node ./native/arp/build/Release/arp.node
ENTRYPOINT ["/opt/portway/bin/portway"]
