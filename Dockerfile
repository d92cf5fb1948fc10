# The engine image used by docker-compose.yml.
FROM node:20-bookworm
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY . .
ENV NODE_ENV=production
EXPOSE 3000
CMD ["node", "--max-semi-space-size=32", "bin/stampede.mjs", "serve"]
