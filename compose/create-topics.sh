#!/usr/bin/env bash
# Creates the pipeline's topics (idempotent). The list must match Shared/Models/Topics.swift;
# a test (DeploymentTests) checks that it does.
set -euo pipefail
: "${BOOTSTRAP:?}" "${PARTITIONS:=12}" "${REPLICATION_FACTOR:=3}"
kt=/opt/kafka/bin/kafka-topics.sh
create() {
  "$kt" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$1" \
        --partitions "$PARTITIONS" --replication-factor "$REPLICATION_FACTOR" --config min.insync.replicas=2 "${@:2}"
}
for topic in \
    encompass.incidents.raw encompass.incidents encompass.history encompass.review.decisions \
    encompass.children encompass.school.feedback encompass.schools.register encompass.notice.requests \
    encompass.notices.due encompass.notice.events \
    encompass.dlq.intake encompass.dlq.child-research encompass.dlq.school-resolution \
    encompass.dlq.scheduling encompass.dlq.dispatch; do
  create "$topic" --config retention.ms=-1
done
create encompass.scheduling.changelog --config cleanup.policy=compact
create encompass.review.proposals --config cleanup.policy=compact
create encompass.dispatch.accounts --config cleanup.policy=compact
create encompass.school-resolution.changelog --config cleanup.policy=compact
create encompass.dispatch.changelog --config cleanup.policy=compact
"$kt" --bootstrap-server "$BOOTSTRAP" --list
