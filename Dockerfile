# stem-rotor as an image: docker build -t registry.example.com/stem-rotor:0.1.0 .
# Everything is bundled into dist/ at build time; the image fetches nothing when it runs.
# Pin the base image by digest for your builds: --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:…
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# better-sqlite3 (SQLite brokers) compiles its addon against this Node
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts && npm rebuild better-sqlite3
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
WORKDIR /opt/stem-rotor
COPY --from=build /src/package.json ./
COPY --from=build /src/dist ./dist
COPY --from=build /src/node_modules ./node_modules
RUN chmod 755 dist/src/cli/bin.js && ln -s /opt/stem-rotor/dist/src/cli/bin.js /usr/local/bin/stem-rotor
USER node
ENTRYPOINT ["stem-rotor"]
