# sluice as a container image: the compiled binary on a distroless glibc base, nothing else.
#
#   docker build -t sluice .
#   docker run --rm -p 8888:8888 -p 8889:8889 -v $PWD/sluice.yaml:/etc/sluice/sluice.yaml:ro \
#     -e SLUICE_CONFIG=/etc/sluice/sluice.yaml -v sluice-state:/var/lib/sluice sluice
#
# What the run stage needs was found by running dist/sluice in an empty chroot
# (test/e2e/minimal-root.test.ts): `ldd dist/sluice` names only glibc (libc, libm, libdl,
# libpthread and the loader), the rule files, the default policy and the audit worker threads
# are embedded in the binary (the *.map files build.ts writes next to it are source maps, not
# read at run time), and apart from those libraries it needs only /proc (Bun aborts without it;
# every container runtime mounts it), SLUICE_HOME and its policy. No /etc/ssl (upstream TLS and
# SLUICE_HOME/ca-bundle.pem fall back to Bun's bundled Mozilla roots), no /tmp, no /dev, no
# /etc/passwd. Without dns.upstreams in the policy it reads /etc/resolv.conf, which the runtime
# provides (Docker, Kubernetes).

# ---- build: Bun from npm (a devDependency, pinned by package-lock.json), never a curl|sh installer.
# Node only runs npm here; 22 because kubernetes-models (a devDependency) asks for it. Same
# Debian release (12, glibc 2.36) as the run stage.
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts stay on: the bun package's postinstall links the platform's binary (@oven/bun-linux-*).
RUN npm ci --no-audit --no-fund
COPY . .
ENV PATH=/src/node_modules/.bin:$PATH
# No .git in the context (.dockerignore): the commit comes in as a build argument
# (docker build --build-arg SLUICE_COMMIT=$(git rev-parse --short=12 HEAD) .), else "unknown".
ARG SLUICE_COMMIT=unknown
RUN SLUICE_COMMIT="$SLUICE_COMMIT" bun run build \
 && /src/dist/sluice --version \
 && install -d -m 0700 /state

# ---- run: distroless cc (glibc, libgcc_s, CA certificates, tzdata, /tmp, and a `nonroot`
# user 65532 in /etc/passwd). base-nossl would hold everything ldd lists too; cc also has
# libgcc_s.so.1, which glibc loads by dlopen (invisible to ldd) to unwind a cancelled thread.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/sluice /sluice
# State: admin token, CA certificate, audit log and its signing key. Made in the build stage
# (distroless has no shell to mkdir with) and handed to the user; mount a volume here to keep
# the signed log and its key across restarts.
COPY --from=build --chown=65532:65532 /state /var/lib/sluice
ENV SLUICE_HOME=/var/lib/sluice
USER 65532:65532
# proxy.listen and admin.listen. The embedded default policy listens on 127.0.0.1 only, which
# is unreachable from outside the container: give a policy that listens on 0.0.0.0 (above).
EXPOSE 8888 8889
# `sluice health` reads only admin.listen from the policy (SLUICE_CONFIG) and asks /healthz over
# loopback (~80 ms). Kubernetes ignores HEALTHCHECK and probes GET /healthz itself.
HEALTHCHECK --interval=30s --timeout=5s CMD ["/sluice", "health"]
ENTRYPOINT ["/sluice"]
CMD ["run"]
