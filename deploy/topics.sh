#!/usr/bin/env bash
# Creates dcpilot's topics on a Kafka cluster with the stock kafka-topics.sh.
#   deploy/topics.sh BOOTSTRAP [REPLICATION]
set -euo pipefail
BOOTSTRAP="${1:?usage: deploy/topics.sh BOOTSTRAP [REPLICATION]}"
RF="${2:-3}"
create() {
  kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$1" --partitions "$2" --replication-factor "$RF" ${3:+--config "$3"}
}
create dcpilot.telemetry 16 retention.ms=604800000
create dcpilot.telemetry.dlq 4 retention.ms=1209600000
create dcpilot.landscape 1 cleanup.policy=compact  # one partition: its order is the history
create dcpilot.models 1 cleanup.policy=compact
create dcpilot.jobs 12 retention.ms=86400000  # job leases: a job per partition (scale-out)
