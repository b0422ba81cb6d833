#!/bin/sh
# Entrypoint of the bugster-step image.
#
# CI systems start step images in different ways, and each must work:
#   Cloud Build, docker run    IMAGE notify ...      -> bugster-step notify ...
#                              IMAGE --version       -> bugster-step --version
#                              IMAGE                 -> bugster-step (its help)
#   Jenkins agent { docker }   IMAGE cat             -> cat (keeps the container up)
#   GitLab Docker executor     IMAGE sh -c '...'     -> sh -c '...' (runs the job script)
#   anything else              IMAGE CMD ARGS...     -> CMD ARGS...
#
# The container may run as any uid, with no passwd entry and no HOME
# (Jenkins passes `-u UID:GID`), so nothing here depends on either.
set -eu

# Python, google-auth and gcloud-style tools look under $HOME; give them a
# writable place when the runtime left it unset or empty.
if [ -z "${HOME:-}" ]; then
    HOME=/tmp
    export HOME
fi

if [ "$#" -eq 0 ]; then
    exec bugster-step
fi

case "$1" in
    notify | probe | help | -*)
        exec bugster-step "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
