// test_support.h - a sink that records everything a test run reports, for assertions.
#pragma once

#include <kiln/kiln.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <map>
#include <string>
#include <vector>

struct recorded_error {
    std::string pattern;
    uint64_t offset, expected, actual;
    bool injected;
    uint32_t word_bytes;
    int32_t sm;
};

struct recording_sink {
    std::vector<std::pair<std::string, double>> metrics;
    std::vector<recorded_error> errors;
    std::vector<double> progress;
    bool any_injected = false;
    std::atomic<int> metric_count{0};  // polled by a test's stopper thread
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
        self->metric_count.fetch_add(1);
    }
    static void on_error(void* ctx, const kiln_data_error* e) {
        static_cast<recording_sink*>(ctx)->errors.push_back({e->pattern, e->offset_bytes, e->expected, e->actual, e->injected != 0, e->word_bytes, e->sm});
    }
    static void on_progress(void* ctx, double f) { static_cast<recording_sink*>(ctx)->progress.push_back(f); }
};

// Runs test on the device, sets the cancel flag once the first metric arrived, and returns the
// seconds from setting the flag to kiln_run's return (and its status through status_out).
inline double cancel_latency_seconds(kiln_device* dev, const kiln_test_params& p, recording_sink& rec,
                                     kiln_status* status_out) {
    volatile int32_t cancel = 0;
    std::chrono::steady_clock::time_point cancelled_at;
    std::thread stopper([&] {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (rec.metric_count.load() == 0 && std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        cancelled_at = std::chrono::steady_clock::now();
        cancel = 1;
    });
    *status_out = kiln_run(dev, &p, &rec.sink, &cancel);
    const auto returned = std::chrono::steady_clock::now();
    stopper.join();
    return std::chrono::duration<double>(returned - cancelled_at).count();
}

// The cpu backend's device, opened for each test (no plugins: the folder does not exist).
struct cpu_device_fixture : ::testing::Test {
    kiln_registry* reg = nullptr;
    kiln_device* dev = nullptr;
    void SetUp() override {
        ASSERT_EQ(kiln_registry_create("/nonexistent", &reg), KILN_OK);
        ASSERT_EQ(kiln_device_open(reg, "cpu", 0, &dev), KILN_OK);
    }
    void TearDown() override {
        kiln_device_destroy(dev);
        kiln_registry_destroy(reg);
    }
};

inline std::string last_error_text() {
    char buf[1024];
    kiln_last_error(buf, sizeof buf);
    return buf;
}
