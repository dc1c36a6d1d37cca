/*
 * Host RAM and media for the virtio-blk simulation, shared with the Python test bench in-process.
 *
 * The simulator reaches memory through three calls: read a 32-bit word, write a word under byte
 * strobes, sync. Verilator calls them as DPI-C functions (hwsim_dpi_*), Icarus as VPI system
 * functions ($hwsim_read, $hwsim_write, $hwsim_sync, $hwsim_anon, $hwsim_inside, $hwsim_error; build
 * with -DHWSIM_VPI).
 *
 * There are 16 spaces; the virtio-blk harness uses 0 = host RAM (byte addresses from `base`) and 1 = media
 * (byte offsets from 0), the generic memory slaves (hwsim_axi_mem, ...) whichever their SPACE parameter
 * names. A memory slave asks hwsim_inside() first and answers an error response (counted as an error)
 * for a beat outside the attached range.
 * Python attaches its own mmap to a space with hwsim_attach() (through ctypes: this library is
 * already loaded in the simulator process, so DMA lands directly in the memory the driver sees: a
 * RamSpace, a disk image file). A pure HDL test bench asks for anonymous memory with $hwsim_anon.
 * Accesses outside the attached range do nothing (reads give all ones) and are counted as faults.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define HWSIM_EXPORT __attribute__((visibility("default")))
#define NSPACES 16
#define NSTATS 5

struct hwsim_space {
    uint8_t *mem;
    uint64_t base;
    uint64_t size;
    int owned;
    uint64_t stats[NSTATS]; /* reads, writes, syncs, faults, error responses */
};

static struct hwsim_space spaces[NSPACES];

static struct hwsim_space *space_of(int s) {
    return (s >= 0 && s < NSPACES) ? &spaces[s] : NULL;
}

static void release(struct hwsim_space *sp) {
    if (sp->owned && sp->mem)
        munmap(sp->mem, sp->size);
    sp->mem = NULL;
    sp->size = 0;
    sp->owned = 0;
}

HWSIM_EXPORT int hwsim_attach(int s, void *mem, uint64_t base, uint64_t size) {
    struct hwsim_space *sp = space_of(s);
    if (!sp || !mem || !size)
        return -1;
    release(sp);
    sp->mem = (uint8_t *)mem;
    sp->base = base;
    sp->size = size;
    memset(sp->stats, 0, sizeof sp->stats);
    return 0;
}

HWSIM_EXPORT void hwsim_detach(int s) {
    struct hwsim_space *sp = space_of(s);
    if (sp)
        release(sp);
}

HWSIM_EXPORT int hwsim_anon(int s, uint64_t base, uint64_t size) {
    struct hwsim_space *sp = space_of(s);
    void *mem;
    if (!sp || !size)
        return -1;
    mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -1;
    hwsim_attach(s, mem, base, size);
    sp->owned = 1;
    return 0;
}

HWSIM_EXPORT uint64_t hwsim_stat(int s, int which) {
    struct hwsim_space *sp = space_of(s);
    return (sp && which >= 0 && which < NSTATS) ? sp->stats[which] : 0;
}

/* The byte at `addr`, or NULL when [addr, addr + 4) is not all inside the space. */
static uint8_t *locate(struct hwsim_space *sp, uint64_t addr) {
    uint64_t off = addr - sp->base;
    if (!sp->mem || addr < sp->base || off > sp->size || sp->size - off < 4) {
        sp->stats[3]++;
        return NULL;
    }
    return sp->mem + off;
}

/* 1 when [addr, addr + n) lies inside the space's attached memory (counts nothing). */
HWSIM_EXPORT int hwsim_inside(int s, uint64_t addr, uint64_t n) {
    struct hwsim_space *sp = space_of(s);
    uint64_t off;
    if (!sp || !sp->mem || addr < sp->base)
        return 0;
    off = addr - sp->base;
    return off <= sp->size && sp->size - off >= n;
}

/* A memory slave answered an error response for this space. */
HWSIM_EXPORT void hwsim_error(int s) {
    struct hwsim_space *sp = space_of(s);
    if (sp)
        sp->stats[4]++;
}

HWSIM_EXPORT uint32_t hwsim_read32(int s, uint64_t addr) {
    struct hwsim_space *sp = space_of(s);
    uint8_t *p;
    if (!sp)
        return 0xffffffffu;
    sp->stats[0]++;
    p = locate(sp, addr);
    if (!p)
        return 0xffffffffu;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

HWSIM_EXPORT void hwsim_write32(int s, uint64_t addr, uint32_t data, uint32_t strb) {
    struct hwsim_space *sp = space_of(s);
    uint8_t *p;
    int i;
    if (!sp)
        return;
    sp->stats[1]++;
    p = locate(sp, addr);
    if (!p)
        return;
    for (i = 0; i < 4; i++)
        if (strb & (1u << i))
            p[i] = (uint8_t)(data >> (8 * i));
}

HWSIM_EXPORT void hwsim_sync(int s) {
    struct hwsim_space *sp = space_of(s);
    if (!sp)
        return;
    sp->stats[2]++;
    /* A file-backed mapping (a disk image) reaches the file; anonymous memory has nothing to do. */
    if (sp->mem && !sp->owned) {
        uintptr_t start = (uintptr_t)sp->mem & ~(uintptr_t)4095;
        msync((void *)start, sp->size + ((uintptr_t)sp->mem - start), MS_SYNC);
    }
}

/* ---- Verilator: DPI-C imports ------------------------------------------------------------------- */
HWSIM_EXPORT int hwsim_dpi_read(int s, long long addr) {
    return (int)hwsim_read32(s, (uint64_t)addr);
}

HWSIM_EXPORT void hwsim_dpi_write(int s, long long addr, int data, int strb) {
    hwsim_write32(s, (uint64_t)addr, (uint32_t)data, (uint32_t)strb);
}

HWSIM_EXPORT void hwsim_dpi_sync(int s) {
    hwsim_sync(s);
}

HWSIM_EXPORT int hwsim_dpi_inside(int s, long long addr, int n) {
    return hwsim_inside(s, (uint64_t)addr, (uint64_t)(unsigned)n);
}

HWSIM_EXPORT void hwsim_dpi_error(int s) {
    hwsim_error(s);
}

HWSIM_EXPORT int hwsim_dpi_anon(int s, long long base, long long size) {
    return hwsim_anon(s, (uint64_t)base, (uint64_t)size);
}

/* ---- Icarus: VPI system functions --------------------------------------------------------------- */
#ifdef HWSIM_VPI
#include <stdlib.h>
#include <vpi_user.h>

#define MAX_ARGS 4

/* Argument handles, found once per call site and kept as the call's user data. */
static vpiHandle *call_args(vpiHandle call) {
    vpiHandle *args = (vpiHandle *)vpi_get_userdata(call);
    vpiHandle it, arg;
    int n = 0;
    if (args)
        return args;
    args = (vpiHandle *)calloc(MAX_ARGS, sizeof *args);
    it = vpi_iterate(vpiArgument, call);
    while (it && (arg = vpi_scan(it)) != NULL) {
        if (n < MAX_ARGS)
            args[n++] = arg;
    }
    vpi_put_userdata(call, args);
    return args;
}

static uint64_t arg_u64(vpiHandle h) {
    s_vpi_value v;
    uint64_t value;
    if (!h)
        return 0;
    v.format = vpiVectorVal;
    vpi_get_value(h, &v);
    value = (uint32_t)v.value.vector[0].aval;
    if (vpi_get(vpiSize, h) > 32)
        value |= (uint64_t)(uint32_t)v.value.vector[1].aval << 32;
    return value;
}

static PLI_INT32 read_calltf(PLI_BYTE8 *user) {
    vpiHandle call = vpi_handle(vpiSysTfCall, NULL);
    vpiHandle *args = call_args(call);
    s_vpi_vecval word;
    s_vpi_value v;
    (void)user;
    word.aval = (PLI_INT32)hwsim_read32((int)arg_u64(args[0]), arg_u64(args[1]));
    word.bval = 0;
    v.format = vpiVectorVal;
    v.value.vector = &word;
    vpi_put_value(call, &v, NULL, vpiNoDelay);
    return 0;
}

static PLI_INT32 read_sizetf(PLI_BYTE8 *user) {
    (void)user;
    return 32;
}

static PLI_INT32 inside_calltf(PLI_BYTE8 *user) {
    vpiHandle call = vpi_handle(vpiSysTfCall, NULL);
    vpiHandle *args = call_args(call);
    s_vpi_vecval word;
    s_vpi_value v;
    (void)user;
    word.aval = hwsim_inside((int)arg_u64(args[0]), arg_u64(args[1]), arg_u64(args[2]));
    word.bval = 0;
    v.format = vpiVectorVal;
    v.value.vector = &word;
    vpi_put_value(call, &v, NULL, vpiNoDelay);
    return 0;
}

static PLI_INT32 error_calltf(PLI_BYTE8 *user) {
    vpiHandle *args = call_args(vpi_handle(vpiSysTfCall, NULL));
    (void)user;
    hwsim_error((int)arg_u64(args[0]));
    return 0;
}

static PLI_INT32 write_calltf(PLI_BYTE8 *user) {
    vpiHandle *args = call_args(vpi_handle(vpiSysTfCall, NULL));
    (void)user;
    hwsim_write32((int)arg_u64(args[0]), arg_u64(args[1]), (uint32_t)arg_u64(args[2]),
                  (uint32_t)arg_u64(args[3]));
    return 0;
}

static PLI_INT32 sync_calltf(PLI_BYTE8 *user) {
    vpiHandle *args = call_args(vpi_handle(vpiSysTfCall, NULL));
    (void)user;
    hwsim_sync((int)arg_u64(args[0]));
    return 0;
}

static PLI_INT32 anon_calltf(PLI_BYTE8 *user) {
    vpiHandle *args = call_args(vpi_handle(vpiSysTfCall, NULL));
    (void)user;
    if (hwsim_anon((int)arg_u64(args[0]), arg_u64(args[1]), arg_u64(args[2])) != 0)
        vpi_printf("hwsim_shm: cannot allocate space %d\n", (int)arg_u64(args[0]));
    return 0;
}

static void register_tf(PLI_INT32 type, const char *name, PLI_INT32 (*calltf)(PLI_BYTE8 *),
                        PLI_INT32 (*sizetf)(PLI_BYTE8 *)) {
    s_vpi_systf_data tf;
    memset(&tf, 0, sizeof tf);
    tf.type = type;
    tf.sysfunctype = vpiSizedFunc;
    tf.tfname = (PLI_BYTE8 *)name;
    tf.calltf = calltf;
    tf.sizetf = sizetf;
    vpi_register_systf(&tf);
}

static void hwsim_register(void) {
    register_tf(vpiSysFunc, "$hwsim_read", read_calltf, read_sizetf);
    register_tf(vpiSysTask, "$hwsim_write", write_calltf, NULL);
    register_tf(vpiSysTask, "$hwsim_sync", sync_calltf, NULL);
    register_tf(vpiSysTask, "$hwsim_anon", anon_calltf, NULL);
    register_tf(vpiSysFunc, "$hwsim_inside", inside_calltf, read_sizetf);
    register_tf(vpiSysTask, "$hwsim_error", error_calltf, NULL);
}

HWSIM_EXPORT void (*vlog_startup_routines[])(void) = {hwsim_register, NULL};
#endif
