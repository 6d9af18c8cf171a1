/* fake_rocm_smi.c - a librocm_smi64.so whose rsmi_init does what the real one does on a node without
 * amdgpu: prints its complaint to stderr and fails. Proves kiln captures the text into the reason
 * (and, without an AMD GPU on the PCI bus, never calls it at all). */
#include <stdint.h>
#include <stdio.h>

int rsmi_init(uint64_t flags) {
    (void)flags;
    fprintf(stderr, "Failed to open drm root directory /sys/class/drm.\n");
    fprintf(stderr, "Exception caught: rsmi_init.\n");
    return 8; /* RSMI_STATUS_INIT_ERROR */
}

int rsmi_shut_down(void) { return 0; }

int rsmi_num_monitor_devices(uint32_t* count) {
    *count = 0;
    return 0;
}
