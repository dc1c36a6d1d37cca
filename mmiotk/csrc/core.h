/*
 * core.h - what the register fast paths (registers.c) share with the accessor core (accessors.c).
 * Internal to the mmiotk._accessors extension.
 */
#ifndef MMIOTK_CORE_H
#define MMIOTK_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "mmio_io.h"

typedef struct {
    PyObject_HEAD
    char *base;         /* start of the mapping while direct, else NULL */
    Py_ssize_t size;
    Py_ssize_t last[9]; /* last[w]: highest valid offset for width w (negative: none) */
    int direct;         /* accesses go straight to memory */
    int attached;       /* `view` is held */
    Py_buffer view;
    /* A transaction-backed window instead: its read(offset, width) and write(offset, width, value), called
     * from here at bus_start + offset while `bus` is on. */
    int bus;
    PyObject *bus_read;
    PyObject *bus_write;
    Py_ssize_t bus_start;
} CoreObject;

extern PyTypeObject CoreType;

/* True when `fn` is `bus`'s own compiled ordered accessor of `bits` (read or write): then the register fast
 * paths may use core_read/core_write on `bus` instead of calling `fn`. */
int core_is_own_accessor(PyObject *fn, PyObject *bus, int bits, int write);

/* One ordered access of `bits` at `off` straight to memory; 0 (and nothing done) when the core is not direct
 * or the offset is not valid, in which case the caller goes through the Python-visible accessor. */
static inline int
core_read(CoreObject *c, Py_ssize_t off, int bits, uint64_t *out)
{
    int width = bits / 8;
    if (!c->direct || off < 0 || off > c->last[width] || (off & (width - 1)))
        return 0;
    switch (bits) {
    case 8: *out = mmio_read8(c->base + off); return 1;
    case 16: *out = mmio_read16(c->base + off); return 1;
    case 32: *out = mmio_read32(c->base + off); return 1;
    case 64: *out = mmio_read64(c->base + off); return 1;
    }
    return 0;
}

static inline int
core_write(CoreObject *c, Py_ssize_t off, int bits, uint64_t v)
{
    int width = bits / 8;
    if (!c->direct || off < 0 || off > c->last[width] || (off & (width - 1)))
        return 0;
    switch (bits) {
    case 8: mmio_write8(c->base + off, (uint8_t)v); return 1;
    case 16: mmio_write16(c->base + off, (uint16_t)v); return 1;
    case 32: mmio_write32(c->base + off, (uint32_t)v); return 1;
    case 64: mmio_write64(c->base + off, v); return 1;
    }
    return 0;
}

int register_ops_init(PyObject *module);

#endif /* MMIOTK_CORE_H */
