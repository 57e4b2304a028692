#!/bin/sh
# Entry point of plugmq/kafka: configured like the official apache/kafka image, so the testkit
# sends the same environment to either. KAFKA_FOO_BAR=x becomes foo.bar=x (`__` → `_`, `___` → `-`);
# with no KAFKA_* variables the template runs on 127.0.0.1:9092.
set -eu
cd /opt/kafka
props=/tmp/server.properties
if env | grep -q '^KAFKA_'; then
  : >"$props"
  env | grep '^KAFKA_' | grep -v '^KAFKA_HEAP_OPTS=' | while IFS='=' read -r name value; do
    key=$(printf '%s' "${name#KAFKA_}" | tr 'A-Z' 'a-z' | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
    printf '%s=%s\n' "$key" "$value" >>"$props"
  done
else
  sed -e 's#@HOST@#127.0.0.1#g' -e 's#@PORT@#9092#g' -e 's#@CONTROLLER_PORT@#9093#g' \
    -e 's#@LOG_DIR@#/tmp/kraft-combined-logs#g' server.properties >"$props"
fi
log_dir=$(sed -n 's/^log\.dirs=//p' "$props")
[ -n "$log_dir" ] || { log_dir=/tmp/kraft-combined-logs; echo "log.dirs=$log_dir" >>"$props"; }
cp="/opt/kafka/libs/*"
jopts="-Dlog4j.configuration=file:/opt/kafka/log4j.properties"
# A restarted container keeps its formatted log dir: --ignore-formatted makes the format a no-op then.
java $jopts -cp "$cp" kafka.tools.StorageTool format --ignore-formatted \
  -t "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -c "$props"
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} $jopts -cp "$cp" kafka.Kafka "$props"
