# personalize-ops: the daemon image for ECS Fargate (deploy/stack.yaml, deploy/ecs-task.json).
#
# docker build -t personalize-ops .
#
# The build stage uses the dist profile (Cargo.toml, docs/building.md): the smallest binary, and so
# the smallest idle resident set. .ci/run's lint step checks this file with hadolint. The runtime
# stage is distroless: the binary, glibc, CA certificates, no shell; it runs as the numeric
# non-root user 65532 and writes nothing to its root filesystem, so it works with a read-only one.

# The toolchain is the crate's rust-version (Cargo.toml).
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: a change of the code does not rebuild the AWS SDK.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --profile dist --locked \
    && rm -rf src
COPY config ./config
COPY src ./src
# The stub's artefacts are older than the real sources only by mtime; touch makes cargo rebuild.
RUN touch src/main.rs src/lib.rs \
    && cargo build --profile dist --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/dist/personalize-ops /personalize-ops
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/personalize-ops", "healthcheck"]
ENTRYPOINT ["/personalize-ops"]
CMD ["run"]
