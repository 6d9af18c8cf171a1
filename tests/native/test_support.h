// test_support.h - a sink that records everything a test run reports, for assertions.
#pragma once

#include <kiln/kiln.h>

#include <atomic>
#include <map>
#include <string>
#include <vector>

struct recorded_error {
    std::string pattern;
    uint64_t offset, expected, actual;
    bool injected;
};

struct recording_sink {
    std::vector<std::pair<std::string, double>> metrics;
    std::vector<recorded_error> errors;
    std::vector<double> progress;
    bool any_injected = false;
    kiln_sink sink{this, &on_metric, &on_error, &on_progress};

    double last(const std::string& name) const {
        for (auto it = metrics.rbegin(); it != metrics.rend(); ++it)
            if (it->first == name) return it->second;
        return -1;
    }
    int count(const std::string& name) const {
        int n = 0;
        for (const auto& m : metrics) n += m.first == name;
        return n;
    }

    static void on_metric(void* ctx, const kiln_metric* m) {
        auto* self = static_cast<recording_sink*>(ctx);
        self->metrics.emplace_back(m->metric, m->value);
        self->any_injected |= m->injected != 0;
    }
    static void on_error(void* ctx, const kiln_data_error* e) {
        static_cast<recording_sink*>(ctx)->errors.push_back({e->pattern, e->offset_bytes, e->expected, e->actual, e->injected != 0});
    }
    static void on_progress(void* ctx, double f) { static_cast<recording_sink*>(ctx)->progress.push_back(f); }
};

inline std::string last_error_text() {
    char buf[1024];
    kiln_last_error(buf, sizeof buf);
    return buf;
}
