#ifndef ENCOMPASS_CRDKAFKA_SHIM_H
#define ENCOMPASS_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Swift cannot call C variadic functions: one (error, rtt) pair for one broker's next request of ApiKey. */
static inline rd_kafka_resp_err_t encompass_mock_broker_push_request_error(rd_kafka_mock_cluster_t *mcluster, int32_t broker_id,
                                                                           int16_t ApiKey, rd_kafka_resp_err_t err, int rtt_ms) {
    return rd_kafka_mock_broker_push_request_error_rtts(mcluster, broker_id, ApiKey, 1, err, rtt_ms);
}
#endif
