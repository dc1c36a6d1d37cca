/*
 * mmiotk._accessors - the compiled accessor core of MmioBuffer.
 *
 * `Core` is the C base of MmioBuffer. While a buffer is attached to a memory-backed window in native byte
 * order (and neither revoked nor traced), each accessor here does the whole hot path: exact-int offset and
 * value, range, alignment, then one access of exactly the width through mmio_io.h with the barriers Linux
 * puts around it. On a transaction-backed window in little-endian order (QEMU's qtest, a simulator's bus)
 * the same checks are made here and the window's own read/write is called: one bus transaction, as the
 * Python path's lane makes it, without that path's two Python frames per access. Anything else - a revoked
 * or traced buffer, a numpy integer, a bad offset or value - goes to the pure-Python accessor of the same
 * name (registered by
 * mmiotk.accessor_core), which is the reference behaviour and raises the specific error. So the two paths
 * cannot disagree about errors: there is only one place that words them.
 */
#include "core.h"

#include <string.h>

enum {
    FB_READ8, FB_READ16, FB_READ32, FB_READ64,
    FB_READ8_RELAXED, FB_READ16_RELAXED, FB_READ32_RELAXED, FB_READ64_RELAXED,
    FB_WRITE8, FB_WRITE16, FB_WRITE32, FB_WRITE64,
    FB_WRITE8_RELAXED, FB_WRITE16_RELAXED, FB_WRITE32_RELAXED, FB_WRITE64_RELAXED,
    FB_MODIFY32, FB_READ_BLOCK, FB_WRITE_BLOCK,
    FB_COUNT
};

static const char *const fallback_names[FB_COUNT] = {
    "read8", "read16", "read32", "read64",
    "read8_relaxed", "read16_relaxed", "read32_relaxed", "read64_relaxed",
    "write8", "write16", "write32", "write64",
    "write8_relaxed", "write16_relaxed", "write32_relaxed", "write64_relaxed",
    "modify32", "read_block", "write_block",
};

/* The pure-Python implementations, one per method; set once by set_fallbacks(). */
static PyObject *fallbacks[FB_COUNT];

static PyObject *
fallback(int which, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *fn = fallbacks[which];
    if (fn == NULL) {
        PyErr_Format(PyExc_RuntimeError, "mmiotk._accessors: no Python accessor registered for %s",
                     fallback_names[which]);
        return NULL;
    }
    return PyObject_Vectorcall(fn, args, (size_t)nargs, NULL);
}

/* The offset when `arg` is an exact int in [0, last] aligned to `width`; -1 otherwise (no error set). */
static inline Py_ssize_t
checked_offset(CoreObject *self, PyObject *arg, int width)
{
    if (!PyLong_CheckExact(arg))
        return -1;
    Py_ssize_t off = PyLong_AsSsize_t(arg);
    if (off == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    if (off < 0 || off > self->last[width] || (off & (width - 1)))
        return -1;
    return off;
}

/* An exact int value in [0, max] into *out; 0 when it is not one (no error set). */
static inline int
checked_value(PyObject *arg, unsigned long long max, unsigned long long *out)
{
    if (!PyLong_CheckExact(arg))
        return 0;
    unsigned long long v = PyLong_AsUnsignedLongLong(arg);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (v > max)
        return 0;
    *out = v;
    return 1;
}

/* One transaction on a transaction-backed window: window.read(bus_start + off, width), the barrier an ordered
 * read puts after it (Linux __io_ar) when `ordered`. */
static PyObject *
bus_read(CoreObject *self, Py_ssize_t off, int width, int ordered)
{
    PyObject *args[2] = {PyLong_FromSsize_t(self->bus_start + off), PyLong_FromLong(width)};
    PyObject *value = NULL;
    if (args[0] != NULL && args[1] != NULL)
        value = PyObject_Vectorcall(self->bus_read, args, 2, NULL);
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    if (value != NULL && ordered)
        mmio_io_ar(0);
    return value;
}

/* window.write(bus_start + off, width, value), after the barrier an ordered write puts before it (__io_bw). */
static PyObject *
bus_write(CoreObject *self, Py_ssize_t off, int width, PyObject *value, int ordered)
{
    if (ordered)
        mmio_io_bw();
    PyObject *args[3] = {PyLong_FromSsize_t(self->bus_start + off), PyLong_FromLong(width), value};
    PyObject *result = NULL;
    if (args[0] != NULL && args[1] != NULL)
        result = PyObject_Vectorcall(self->bus_write, args, 3, NULL);
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    return result;
}

#define DEFINE_READ(bits, suffix, FB, ORDERED)                                                   \
    static PyObject *Core_read##bits##suffix(CoreObject *self, PyObject *arg)                  \
    {                                                                                          \
        if (self->direct) {                                                                    \
            Py_ssize_t off = checked_offset(self, arg, (bits) / 8);                            \
            if (off >= 0)                                                                      \
                return PyLong_FromUnsignedLongLong(mmio_read##bits##suffix(self->base + off)); \
        } else if (self->bus) {                                                                \
            Py_ssize_t off = checked_offset(self, arg, (bits) / 8);                            \
            if (off >= 0)                                                                      \
                return bus_read(self, off, (bits) / 8, ORDERED);                               \
        }                                                                                      \
        PyObject *args[2] = {(PyObject *)self, arg};                                           \
        return fallback(FB, args, 2);                                                          \
    }

#define DEFINE_WRITE(bits, suffix, FB, ORDERED)                                                          \
    static PyObject *Core_write##bits##suffix(CoreObject *self, PyObject *const *args, Py_ssize_t nargs) \
    {                                                                                                  \
        if ((self->direct || self->bus) && nargs == 2) {                                               \
            Py_ssize_t off = checked_offset(self, args[0], (bits) / 8);                                \
            unsigned long long v;                                                                      \
            if (off >= 0 && checked_value(args[1], UINT##bits##_MAX, &v)) {                            \
                if (!self->direct)                                                                     \
                    return bus_write(self, off, (bits) / 8, args[1], ORDERED);                         \
                mmio_write##bits##suffix(self->base + off, (uint##bits##_t)v);                         \
                Py_RETURN_NONE;                                                                        \
            }                                                                                          \
        }                                                                                              \
        PyObject *all[3] = {(PyObject *)self, nargs > 0 ? args[0] : NULL, nargs > 1 ? args[1] : NULL}; \
        if (nargs != 2) {                                                                              \
            PyErr_Format(PyExc_TypeError, "write" #bits #suffix "() takes 2 arguments (%zd given)",    \
                         nargs);                                                                       \
            return NULL;                                                                               \
        }                                                                                              \
        return fallback(FB, all, 3);                                                                   \
    }

/* The four accessors of one width: ordered and relaxed, read and write. */
#define DEFINE_ACCESSORS(bits)                                  \
    DEFINE_READ(bits, , FB_READ##bits, 1)                       \
    DEFINE_READ(bits, _relaxed, FB_READ##bits##_RELAXED, 0)     \
    DEFINE_WRITE(bits, , FB_WRITE##bits, 1)                     \
    DEFINE_WRITE(bits, _relaxed, FB_WRITE##bits##_RELAXED, 0)

DEFINE_ACCESSORS(8)
DEFINE_ACCESSORS(16)
DEFINE_ACCESSORS(32)
DEFINE_ACCESSORS(64)

/* modify32(offset, clear_mask, set_mask): ordered read, then ordered write of (old & ~clear) | set. */
static PyObject *
Core_modify32(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->direct && nargs == 3) {
        Py_ssize_t off = checked_offset(self, args[0], 4);
        unsigned long long clear, set;
        if (off >= 0 && checked_value(args[1], UINT32_MAX, &clear) && checked_value(args[2], UINT32_MAX, &set)) {
            uint32_t v = (mmio_read32(self->base + off) & ~(uint32_t)clear) | (uint32_t)set;
            mmio_write32(self->base + off, v);
            return PyLong_FromUnsignedLong(v);
        }
    }
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "modify32() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *all[4] = {(PyObject *)self, args[0], args[1], args[2]};
    return fallback(FB_MODIFY32, all, 4);
}

/* The span when offset and n are exact ints with [offset, offset + n) inside the mapping; else 0. */
static inline int
checked_span(CoreObject *self, PyObject *o, Py_ssize_t n, Py_ssize_t *off)
{
    if (!PyLong_CheckExact(o))
        return 0;
    Py_ssize_t v = PyLong_AsSsize_t(o);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (v < 0 || n < 0 || n > self->size - v)
        return 0;
    *off = v;
    return 1;
}

static PyObject *
Core_read_block(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->direct && nargs == 2 && PyLong_CheckExact(args[1])) {
        Py_ssize_t n = PyLong_AsSsize_t(args[1]), off;
        if (n == -1 && PyErr_Occurred())
            PyErr_Clear();
        else if (checked_span(self, args[0], n, &off))
            return PyBytes_FromStringAndSize(self->base + off, n);
    }
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "read_block() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *all[3] = {(PyObject *)self, args[0], args[1]};
    return fallback(FB_READ_BLOCK, all, 3);
}

static PyObject *
Core_write_block(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->direct && nargs == 2) {
        PyObject *data = args[1];
        Py_ssize_t off;
        if (PyBytes_CheckExact(data) || PyByteArray_CheckExact(data)) {
            const char *src = PyBytes_CheckExact(data) ? PyBytes_AS_STRING(data) : PyByteArray_AS_STRING(data);
            Py_ssize_t n = PyBytes_CheckExact(data) ? PyBytes_GET_SIZE(data) : PyByteArray_GET_SIZE(data);
            if (checked_span(self, args[0], n, &off)) {
                memmove(self->base + off, src, (size_t)n);
                Py_RETURN_NONE;
            }
        } else if (PyObject_CheckBuffer(data)) {
            Py_buffer src;
            if (PyObject_GetBuffer(data, &src, PyBUF_C_CONTIGUOUS) == 0) {
                int ok = checked_span(self, args[0], src.len, &off);
                if (ok)
                    memmove(self->base + off, src.buf, (size_t)src.len);
                PyBuffer_Release(&src);
                if (ok)
                    Py_RETURN_NONE;
            } else {
                PyErr_Clear();
            }
        }
    }
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "write_block() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *all[3] = {(PyObject *)self, args[0], args[1]};
    return fallback(FB_WRITE_BLOCK, all, 3);
}

/* --- attaching to memory --------------------------------------------------------------------------- */
static void
core_release(CoreObject *self)
{
    self->direct = 0;
    self->base = NULL;
    if (self->attached) {
        self->attached = 0;
        PyBuffer_Release(&self->view);
    }
    self->bus = 0;
    Py_CLEAR(self->bus_read);
    Py_CLEAR(self->bus_write);
}

static void
set_size(CoreObject *self, Py_ssize_t size)
{
    self->size = size;
    for (int w = 1; w <= 8; w++)
        self->last[w] = size - w;
}

static PyObject *
Core_core_attach(CoreObject *self, PyObject *memory)
{
    core_release(self);
    if (PyObject_GetBuffer(memory, &self->view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    self->attached = 1;
    self->base = self->view.buf;
    set_size(self, self->view.len);
    self->direct = 1;
    Py_RETURN_NONE;
}

static PyObject *
Core_core_attach_bus(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_core_attach_bus(read, write, start, size) needs two callables and "
                                         "two ints");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[2]), size = PyLong_AsSsize_t(args[3]);
    if ((start == -1 || size == -1) && PyErr_Occurred())
        return NULL;
    core_release(self);
    self->bus_read = Py_NewRef(args[0]);
    self->bus_write = Py_NewRef(args[1]);
    self->bus_start = start;
    set_size(self, size);
    self->bus = 1;
    Py_RETURN_NONE;
}

static PyObject *
Core_core_direct(CoreObject *self, PyObject *flag)
{
    int on = PyObject_IsTrue(flag);
    if (on < 0)
        return NULL;
    self->direct = on && self->attached;
    self->bus = on && self->bus_write != NULL;
    return PyBool_FromLong(self->direct || self->bus);
}

static PyObject *
Core_core_detach(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    core_release(self);
    Py_RETURN_NONE;
}

static PyObject *
Core_get_core_is_direct(CoreObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->direct);
}

static PyObject *
Core_get_core_is_bus(CoreObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->bus);
}

static void
Core_dealloc(CoreObject *self)
{
    core_release(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define RD(name, doc) {#name, (PyCFunction)Core_##name, METH_O, doc}
#define WR(name, doc) {#name, (PyCFunction)(void (*)(void))Core_##name, METH_FASTCALL, doc}

static PyMethodDef Core_methods[] = {
    RD(read8, "Ordered 8-bit read (Linux readb)."),
    RD(read16, "Ordered 16-bit read (Linux readw)."),
    RD(read32, "Ordered 32-bit read (Linux readl)."),
    RD(read64, "Ordered 64-bit read (Linux readq)."),
    RD(read8_relaxed, "8-bit read ordered only against other MMIO (readb_relaxed)."),
    RD(read16_relaxed, "16-bit read ordered only against other MMIO (readw_relaxed)."),
    RD(read32_relaxed, "32-bit read ordered only against other MMIO (readl_relaxed)."),
    RD(read64_relaxed, "64-bit read ordered only against other MMIO (readq_relaxed)."),
    WR(write8, "Ordered 8-bit write (Linux writeb)."),
    WR(write16, "Ordered 16-bit write (Linux writew)."),
    WR(write32, "Ordered 32-bit write (Linux writel)."),
    WR(write64, "Ordered 64-bit write (Linux writeq)."),
    WR(write8_relaxed, "8-bit write ordered only against other MMIO (writeb_relaxed)."),
    WR(write16_relaxed, "16-bit write ordered only against other MMIO (writew_relaxed)."),
    WR(write32_relaxed, "32-bit write ordered only against other MMIO (writel_relaxed)."),
    WR(write64_relaxed, "64-bit write ordered only against other MMIO (writeq_relaxed)."),
    WR(modify32, "Write (old & ~clear_mask) | set_mask with one ordered read and write; returns it."),
    WR(read_block, "Copy n bytes out (a block copy, not register accesses)."),
    WR(write_block, "Copy data in; checked whole before any byte is written."),
    {"_core_attach", (PyCFunction)Core_core_attach, METH_O, "Access this writable buffer directly."},
    {"_core_attach_bus", (PyCFunction)(void (*)(void))Core_core_attach_bus, METH_FASTCALL,
     "Make each access one call of this transaction-backed window's read/write, at start + offset."},
    {"_core_direct", (PyCFunction)Core_core_direct, METH_O,
     "Turn the compiled path on (if attached) or off (every access goes to the Python path)."},
    {"_core_detach", (PyCFunction)Core_core_detach, METH_NOARGS, "Release the memory; the Python path only."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Core_getset[] = {
    {"_core_is_direct", (getter)Core_get_core_is_direct, NULL, "Accesses go straight to memory.", NULL},
    {"_core_is_bus", (getter)Core_get_core_is_bus, NULL, "Accesses call the window's read/write from C.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mmiotk._accessors.Core",
    .tp_basicsize = sizeof(CoreObject),
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The compiled hot path of MmioBuffer (see mmiotk.accessor_core).",
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
    .tp_new = PyType_GenericNew,
};

int
core_is_own_accessor(PyObject *fn, PyObject *bus, int bits, int write)
{
    static const PyCFunction readers[] = {(PyCFunction)Core_read8, (PyCFunction)Core_read16,
                                          (PyCFunction)Core_read32, (PyCFunction)Core_read64};
    static const PyCFunction writers[] = {(PyCFunction)(void (*)(void))Core_write8,
                                          (PyCFunction)(void (*)(void))Core_write16,
                                          (PyCFunction)(void (*)(void))Core_write32,
                                          (PyCFunction)(void (*)(void))Core_write64};
    int index = bits == 8 ? 0 : bits == 16 ? 1 : bits == 32 ? 2 : bits == 64 ? 3 : -1;
    if (index < 0 || !PyCFunction_Check(fn) || PyCFunction_GET_SELF(fn) != bus
        || !PyObject_TypeCheck(bus, &CoreType))
        return 0;
    return PyCFunction_GET_FUNCTION(fn) == (write ? writers : readers)[index];
}

/* --- module: barriers and registration ------------------------------------------------------------- */
static PyObject *mod_mb(PyObject *m, PyObject *a) { mmio_mb(); Py_RETURN_NONE; }
static PyObject *mod_rmb(PyObject *m, PyObject *a) { mmio_rmb(); Py_RETURN_NONE; }
static PyObject *mod_wmb(PyObject *m, PyObject *a) { mmio_wmb(); Py_RETURN_NONE; }
static PyObject *mod_dma_mb(PyObject *m, PyObject *a) { mmio_dma_mb(); Py_RETURN_NONE; }
static PyObject *mod_dma_rmb(PyObject *m, PyObject *a) { mmio_dma_rmb(); Py_RETURN_NONE; }
static PyObject *mod_dma_wmb(PyObject *m, PyObject *a) { mmio_dma_wmb(); Py_RETURN_NONE; }
static PyObject *mod_io_ar(PyObject *m, PyObject *a) { mmio_io_ar(0); Py_RETURN_NONE; }
static PyObject *mod_io_bw(PyObject *m, PyObject *a) { mmio_io_bw(); Py_RETURN_NONE; }

static PyObject *
mod_set_fallbacks(PyObject *m, PyObject *table)
{
    if (!PyDict_Check(table)) {
        PyErr_SetString(PyExc_TypeError, "set_fallbacks() needs a dict of name -> function");
        return NULL;
    }
    PyObject *found[FB_COUNT];
    for (int i = 0; i < FB_COUNT; i++) {
        found[i] = PyDict_GetItemString(table, fallback_names[i]);
        if (found[i] == NULL || !PyCallable_Check(found[i])) {
            PyErr_Format(PyExc_KeyError, "set_fallbacks(): no callable %s", fallback_names[i]);
            return NULL;
        }
    }
    for (int i = 0; i < FB_COUNT; i++) {
        Py_INCREF(found[i]);
        Py_XSETREF(fallbacks[i], found[i]);
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"mb", mod_mb, METH_NOARGS, "Full barrier (Linux mb())."},
    {"rmb", mod_rmb, METH_NOARGS, "Read barrier (Linux rmb())."},
    {"wmb", mod_wmb, METH_NOARGS, "Write barrier (Linux wmb()); drains write-combining buffers."},
    {"dma_mb", mod_dma_mb, METH_NOARGS, "Full barrier for memory shared with a device (Linux dma_mb())."},
    {"dma_rmb", mod_dma_rmb, METH_NOARGS, "Read barrier for DMA memory (Linux dma_rmb())."},
    {"dma_wmb", mod_dma_wmb, METH_NOARGS, "Write barrier for DMA memory (Linux dma_wmb())."},
    {"io_ar", mod_io_ar, METH_NOARGS, "The barrier an ordered read puts after its load (Linux __io_ar)."},
    {"io_bw", mod_io_bw, METH_NOARGS, "The barrier an ordered write puts before its store (Linux __io_bw)."},
    {"set_fallbacks", mod_set_fallbacks, METH_O, "Register the pure-Python accessors, by name."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef accessors_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mmiotk._accessors",
    .m_doc = "The compiled accessor core: exact-width MMIO accesses and Linux's barriers, per architecture.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__accessors(void)
{
    if (PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&accessors_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0
        || PyModule_AddStringConstant(m, "ARCH", MMIO_ARCH) < 0
        || PyModule_AddStringConstant(m, "BARRIERS", MMIO_BARRIERS) < 0
        || register_ops_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
