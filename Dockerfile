# The engine image used by docker-compose.yml.
FROM node:20-bookworm
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY . .
# Not root: the engine needs to write only its data folder (the embedded default's).
RUN mkdir -p /app/data && chown node:node /app/data
USER node
ENV NODE_ENV=production
# In a container the engine serves the container's network (the default, loopback, would serve no one).
ENV STAMPEDE_HTTP_HOST=0.0.0.0
EXPOSE 3000
CMD ["node", "--max-semi-space-size=32", "bin/stampede.mjs", "serve"]
