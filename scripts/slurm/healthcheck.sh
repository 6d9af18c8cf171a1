#!/usr/bin/env bash
# healthcheck.sh - Slurm HealthCheckProgram (slurm.conf takes a path, no arguments):
#   HealthCheckProgram=/opt/kiln/slurm/healthcheck.sh  HealthCheckInterval=300  HealthCheckNodeState=ANY
# Runs kiln slurm healthcheck on this node: drains it on FAIL ("kiln: CODE COMPONENT"), resumes kiln's own
# drain after a pass, leaves every other drain alone; finishes within 60 s whatever hangs (docs/SLURM.md).
kiln=${KILN:-/opt/kiln/bin/kiln}
exec "$kiln" slurm healthcheck >> "${KILN_HEALTHCHECK_LOG:-/var/log/kiln-healthcheck.log}" 2>&1
