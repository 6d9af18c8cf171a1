// kiln_host_util.h - host-side helpers libkiln and the GPU plugins share (the plugins do not link
// libkiln): the serialized sink every test reports through, and two text helpers. Header-only.
#pragma once

#include <kiln/kiln.h>
#include <kiln/kiln_plugin.h>

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace kiln {

// Formats an error message and hands it to the host's set_error: how libkiln and every plugin
// report a failure (each wraps it in its own variadic fail()).
inline kiln_status fail_through(const kiln_host_services* host, kiln_status status, const char* format, va_list args) {
    char buf[1024];
    vsnprintf(buf, sizeof buf, format, args);
    if (host && host->set_error) host->set_error(buf);
    return status;
}

// The folder of the shared library that holds `symbol` (libkiln.so, a plugin): where the plugins
// sit beside it. "." when the loader cannot say.
inline std::string folder_of_library(const void* symbol) {
    Dl_info info{};
    if (dladdr(symbol, &info) && info.dli_fname) {
        const std::string path = info.dli_fname;
        const size_t slash = path.rfind('/');
        if (slash != std::string::npos) return path.substr(0, slash);
    }
    return ".";
}

// Human-readable byte counts for error messages ("23.1 GiB").
inline std::string format_bytes(double bytes) {
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int unit = 0;
    while (bytes >= 1024.0 && unit < 5) {
        bytes /= 1024.0;
        ++unit;
    }
    char buf[64];
    snprintf(buf, sizeof buf, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
    return buf;
}

// Copies text into a fixed char buffer, always NUL-terminated.
inline void copy_text(char* dst, size_t dst_bytes, const std::string& text) {
    if (dst_bytes == 0) return;
    const size_t n = text.size() < dst_bytes - 1 ? text.size() : dst_bytes - 1;
    memcpy(dst, text.data(), n);
    dst[n] = '\0';
}

// Serializes the callbacks of a kiln_sink (they may be called from any worker, never
// concurrently) and caps data-error reports while counting every error.
class sink_writer {
public:
    sink_writer(const kiln_sink* sink, const char* test, uint32_t max_error_reports, bool injected)
        : sink_(sink), test_(test), max_reports_(max_error_reports), injected_(injected) {}

    ~sink_writer() {
        std::lock_guard<std::mutex> lock(mutex_);
        flush_errors();
    }
    sink_writer(const sink_writer&) = delete;
    sink_writer& operator=(const sink_writer&) = delete;

    void metric(const std::string& name, double value, const char* unit) {
        std::lock_guard<std::mutex> lock(mutex_);
        flush_errors();
        if (!sink_->on_metric) return;
        const kiln_metric m = {test_, name.c_str(), unit, value, injected_ ? 1 : 0, 0};
        sink_->on_metric(sink_->ctx, &m);
    }

    // Reported wrong words wait here until the next metric, progress or the end of the test, and go
    // out ordered by offset within each pattern (patterns in the order they first erred), so the
    // "first error" of a verify pass is its lowest address on every backend, however many threads
    // or blocks found them. At most max_error_reports are held; every one is counted.
    void data_error(const char* pattern, uint64_t offset_bytes, uint64_t expected, uint64_t actual, uint32_t word_bytes = 8,
                    int32_t sm = -1) {
        const uint64_t n = errors_.fetch_add(1);
        if (n >= max_reports_) return;
        std::lock_guard<std::mutex> lock(mutex_);
        if (!sink_->on_data_error) return;
        size_t rank = 0;
        while (rank < patterns_.size() && patterns_[rank] != pattern) ++rank;
        if (rank == patterns_.size()) patterns_.push_back(pattern);
        pending_.push_back({rank, pattern, offset_bytes, expected, actual, word_bytes, sm});
    }

    // Errors found but not reported (past a cap): they count, and use up the reports they would have had.
    void count_unreported(uint64_t n) { errors_.fetch_add(n); }

    void progress(double fraction) {
        std::lock_guard<std::mutex> lock(mutex_);
        flush_errors();
        if (sink_->on_progress) sink_->on_progress(sink_->ctx, fraction < 0 ? 0 : fraction > 1 ? 1 : fraction);
    }

    uint64_t errors_counted() const { return errors_.load(); }
    uint32_t max_reports() const { return max_reports_; }
    bool injected() const { return injected_; }

private:
    struct held_error {
        size_t pattern_rank;
        std::string pattern;
        uint64_t offset_bytes, expected, actual;
        uint32_t word_bytes;
        int32_t sm;
    };

    // Under mutex_.
    void flush_errors() {
        if (pending_.empty()) return;
        std::stable_sort(pending_.begin(), pending_.end(), [](const held_error& a, const held_error& b) {
            return a.pattern_rank != b.pattern_rank ? a.pattern_rank < b.pattern_rank : a.offset_bytes < b.offset_bytes;
        });
        for (const held_error& h : pending_) {
            const kiln_data_error e = {test_, h.pattern.c_str(), h.offset_bytes, h.expected, h.actual, h.word_bytes, injected_ ? 1 : 0, h.sm, 0};
            sink_->on_data_error(sink_->ctx, &e);
        }
        pending_.clear();
        patterns_.clear();
    }

    const kiln_sink* sink_;
    const char* test_;
    uint32_t max_reports_;
    bool injected_;
    std::mutex mutex_;
    std::atomic<uint64_t> errors_{0};
    std::vector<held_error> pending_;
    std::vector<std::string> patterns_;
};

}  // namespace kiln
