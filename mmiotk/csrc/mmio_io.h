/*
 * mmio_io.h - one MMIO access of exactly its width, and the barriers Linux puts around it, per architecture.
 *
 * The table is Linux's (arch/<arch>/include/asm/{io,mmio,barrier}.h):
 *
 *                    x86-64            arm64                       riscv64
 *   readX_relaxed    load              load                        load
 *   readX            load              load; dmb oshld (+ a dummy  load; fence i,ir
 *                                      control dependency, as
 *                                      __iormb makes for udelay)
 *   writeX_relaxed   store             store                       store
 *   writeX           store             dmb oshst; store            fence w,o; store
 *   mb / rmb / wmb   mfence/lfence/    dsb sy / dsb ld / dsb st    fence iorw,iorw / ir,ir / ow,ow
 *                    sfence
 *   dma_mb/rmb/wmb   mfence/-/-        dmb osh / oshld / oshst     fence iorw,iorw / ir,ir / ow,ow
 *
 * On x86 an uncached access is already ordered against everything (as Linux's readl/writel, which carry no
 * fence), so the ordered accessors differ from the relaxed ones only by a compiler barrier. riscv's writeX
 * also sets a per-CPU "mmiowb pending" flag for spin_unlock; user space has no such unlock hook, so it is
 * left out. Other architectures fall back to a C11 seq_cst fence wherever one of these barriers stands.
 *
 * No Python here: the header compiles standalone, so its accessors can be cross-compiled and their
 * disassembly checked for each architecture (tests/mmiotk/test_accessor_core.py).
 */
#ifndef MMIOTK_MMIO_IO_H
#define MMIOTK_MMIO_IO_H

#include <stdint.h>

#define MMIO_INLINE static inline __attribute__((always_inline))
#define mmio_barrier() __asm__ __volatile__("" ::: "memory")

#if defined(__x86_64__)
#define MMIO_ARCH "x86_64"
#define MMIO_BARRIERS "x86-64: readX/writeX unfenced (TSO), mb/rmb/wmb = mfence/lfence/sfence"
#define mmio_io_ar(v) mmio_barrier()
#define mmio_io_bw() mmio_barrier()
#define mmio_mb() __asm__ __volatile__("mfence" ::: "memory")
#define mmio_rmb() __asm__ __volatile__("lfence" ::: "memory")
#define mmio_wmb() __asm__ __volatile__("sfence" ::: "memory")
#define mmio_dma_mb() mmio_mb()
#define mmio_dma_rmb() mmio_barrier()
#define mmio_dma_wmb() mmio_barrier()

#elif defined(__aarch64__)
#define MMIO_ARCH "aarch64"
#define MMIO_BARRIERS "arm64: readX = load; dmb oshld, writeX = dmb oshst; store, mb/rmb/wmb = dsb sy/ld/st"
#define mmio_io_ar(v)                                                                   \
    do {                                                                                \
        unsigned long mmio_tmp_;                                                        \
        __asm__ __volatile__("dmb oshld" ::: "memory");                                 \
        __asm__ __volatile__("eor %0, %1, %1\n\tcbnz %0, ."                             \
                             : "=r"(mmio_tmp_) : "r"((unsigned long)(v)) : "memory");   \
    } while (0)
#define mmio_io_bw() __asm__ __volatile__("dmb oshst" ::: "memory")
#define mmio_mb() __asm__ __volatile__("dsb sy" ::: "memory")
#define mmio_rmb() __asm__ __volatile__("dsb ld" ::: "memory")
#define mmio_wmb() __asm__ __volatile__("dsb st" ::: "memory")
#define mmio_dma_mb() __asm__ __volatile__("dmb osh" ::: "memory")
#define mmio_dma_rmb() __asm__ __volatile__("dmb oshld" ::: "memory")
#define mmio_dma_wmb() __asm__ __volatile__("dmb oshst" ::: "memory")

#elif defined(__riscv) && __riscv_xlen == 64
#define MMIO_ARCH "riscv64"
#define MMIO_BARRIERS "riscv64: readX = load; fence i,ir, writeX = fence w,o; store, " \
                      "mb/rmb/wmb = fence iorw,iorw / ir,ir / ow,ow"
#define mmio_io_ar(v) __asm__ __volatile__("fence i,ir" ::: "memory")
#define mmio_io_bw() __asm__ __volatile__("fence w,o" ::: "memory")
#define mmio_mb() __asm__ __volatile__("fence iorw,iorw" ::: "memory")
#define mmio_rmb() __asm__ __volatile__("fence ir,ir" ::: "memory")
#define mmio_wmb() __asm__ __volatile__("fence ow,ow" ::: "memory")
#define mmio_dma_mb() mmio_mb()
#define mmio_dma_rmb() mmio_rmb()
#define mmio_dma_wmb() mmio_wmb()

#else
#define MMIO_ARCH "other"
#define MMIO_BARRIERS "unknown architecture: a C11 seq_cst fence wherever Linux has a barrier"
#define mmio_io_ar(v) __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mmio_io_bw() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mmio_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mmio_rmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mmio_wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mmio_dma_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mmio_dma_rmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mmio_dma_wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

/* One volatile access of exactly the width: native byte order, the caller has checked range and alignment. */
#define MMIO_DEFINE_ACCESSORS(bits)                                                            \
    MMIO_INLINE uint##bits##_t mmio_read##bits##_relaxed(const volatile void *addr)            \
    {                                                                                          \
        return *(const volatile uint##bits##_t *)addr;                                         \
    }                                                                                          \
    MMIO_INLINE uint##bits##_t mmio_read##bits(const volatile void *addr)                      \
    {                                                                                          \
        uint##bits##_t v = *(const volatile uint##bits##_t *)addr;                             \
        mmio_io_ar(v);                                                                         \
        return v;                                                                              \
    }                                                                                          \
    MMIO_INLINE void mmio_write##bits##_relaxed(volatile void *addr, uint##bits##_t v)         \
    {                                                                                          \
        *(volatile uint##bits##_t *)addr = v;                                                  \
    }                                                                                          \
    MMIO_INLINE void mmio_write##bits(volatile void *addr, uint##bits##_t v)                   \
    {                                                                                          \
        mmio_io_bw();                                                                          \
        *(volatile uint##bits##_t *)addr = v;                                                  \
    }

MMIO_DEFINE_ACCESSORS(8)
MMIO_DEFINE_ACCESSORS(16)
MMIO_DEFINE_ACCESSORS(32)
MMIO_DEFINE_ACCESSORS(64)

#endif /* MMIOTK_MMIO_IO_H */
