# apiprof's container image for those who build with an engine (docker, podman,
# buildah): the same image as `cargo xtask image`, which writes it without one as
# target/image/apiprof.oci.tar. Untested: no container engine runs where apiprof is
# developed and tested; xtask/src/image.rs is the reference, and its unit test
# `dockerfile_matches` checks that the final stage below says what it does.
#
#   docker build \
#     --build-arg VERSION="$(cargo metadata --no-deps --format-version 1 | jq -r '.packages[] | select(.name == "profiler") | .version')" \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)" \
#     --build-arg SOURCE=https://… -t apiprof .

# What `cargo xtask setup` installs to build apiprof: the nightly toolchain with
# rust-src (the eBPF programs build with build-std=core), bpf-linker built against the
# nightly's own libLLVM, the musl target and Debian's musl-tools (ring's C).
FROM rust:1.95-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup toolchain install nightly --profile minimal --component rust-src \
 && rustup target add x86_64-unknown-linux-musl
# As xtask/src/setup.rs does: LLVM_PREFIX's lib/ holds the nightly's libLLVM under the
# names bpf-linker's build looks for (bpf-linker 0.13 needs LLVM 22).
RUN lib="$(rustc +nightly --print sysroot)/lib" \
 && llvm="$(ls "$lib"/libLLVM.so.* | head -n 1)" \
 && mkdir -p /opt/llvm-prefix/lib \
 && ln -s "$llvm" /opt/llvm-prefix/lib/libLLVM.so \
 && ln -s "$llvm" "/opt/llvm-prefix/lib/$(basename "$llvm")" \
 && LLVM_PREFIX=/opt/llvm-prefix cargo install bpf-linker --version 0.13.0 --locked \
      --no-default-features --features llvm-22

WORKDIR /src
COPY . .
# profiler/build.rs builds the eBPF programs (nightly, bpf-linker) whatever the target.
RUN CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --package profiler \
      --bin apiprof --target x86_64-unknown-linux-musl
RUN mkdir -p /rootfs/etc /rootfs/usr/local/bin \
 && cp target/x86_64-unknown-linux-musl/release/apiprof /rootfs/usr/local/bin/apiprof \
 && printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' > /rootfs/etc/passwd \
 && printf '%s\n' 'root:x:0:' 'nobody:x:65534:' > /rootfs/etc/group \
 && chmod 0644 /rootfs/etc/passwd /rootfs/etc/group

# The image: the static binary, /etc/passwd and /etc/group, nothing else (no shell).
FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=
COPY --from=builder /rootfs/ /
ENV PATH=/usr/local/bin
LABEL org.opencontainers.image.title="apiprof" \
      org.opencontainers.image.description="eBPF-assisted load profiler for the Kubernetes API server" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}"
# Root, limited by the DaemonSet to CAP_SYS_ADMIN and CAP_SYS_PTRACE with
# no_new_privs on: a non-root user could only get them through file capabilities,
# which need allowPrivilegeEscalation (see USER in xtask/src/image.rs).
USER 0
EXPOSE 9464/tcp
ENTRYPOINT ["apiprof", "daemon"]
