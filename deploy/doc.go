// Package deploy holds what the Docker image and docker-compose.yml of the
// repository root need: the container configurations (config.yaml for
// SQLite on the /data volume, config.postgres.yaml for the compose file's
// postgres profile) and, in healthcheck/, the static program the image runs
// as its HEALTHCHECK. Its tests check the Dockerfile, the compose file,
// .ci/run's build step and these configurations against each other, since no
// Docker engine runs in CI.
package deploy
