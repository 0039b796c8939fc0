# portway node agent image. Debian base so the same iptables/ipset/ipvsadm/conntrack packages the tests
# use are the ones the agent drives on the node.
FROM node:20-bookworm-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-fund --no-audit
COPY . .
RUN npm run build && (test ! -f native/arp/binding.gyp || npx node-gyp rebuild -C native/arp) && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      iptables ipset ipvsadm iproute2 conntrack arping kmod \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/portway
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
COPY --from=build /src/native ./native
ENTRYPOINT ["/opt/portway/bin/portway"]
