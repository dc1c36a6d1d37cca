/*
 * registers.c - compiled fast paths of register handles (mmiotk.registers.handle installs them at bind time).
 *
 * RegisterOp is one handle's `read()`, `write(**fields)` or `modify(**fields)` with the offset, masks and field
 * table bound in. It does what the Python closures in handle.py do, for int field values in range; anything
 * else (a positional value, an enum member, an unknown or read-only field) goes to the handle's reference
 * method unchanged. The access itself is the buffer's: when the buffer's accessor is the compiled core's own
 * method, the core is entered directly (it still checks revocation and tracing: a traced or revoked buffer is
 * not direct, and then the Python-visible accessor is called, so the trace sees every access).
 *
 * FieldGetter is the attribute of a RegisterValue that returns one plain field: (value >> lsb) & mask.
 *
 * RegisterCore is the base of the compiled RegisterHandle class: its `read`, `write` and `modify` are methods
 * of the type that forward to the callables bound in at bind time (a RegisterOp, or the reference method).
 * A method of the type is what CPython's attribute cache specialises (`STATUS.read()` costs no dict lookup);
 * a callable stored in the instance's __dict__ is looked up generically on every call.
 */
#include "core.h"

#include <stddef.h>
#include <structmember.h>
#include <string.h>

enum { OP_READ, OP_WRITE, OP_MODIFY };

#define CACHE_SIZE 64

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int kind;
    int bits;
    int own_rd, own_wr;     /* rd/wr are bus's compiled ordered accessors */
    Py_ssize_t off;
    PyObject *off_obj;
    PyObject *bus, *rd, *wr, *fallback, *vcls;
    PyObject *names;        /* field name -> index into the arrays below */
    Py_ssize_t nfields;
    int *lsb;
    uint64_t *mask, *max;
    uint64_t keep, wo_reset, base;
    struct { uint64_t key; PyObject *value; } cache[CACHE_SIZE];   /* read(): values already made, by raw value */
} RegOpObject;

static PyObject *
call_fallback(RegOpObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

/* The raw value read, or -1 with an exception set. */
static int
do_read(RegOpObject *self, uint64_t *out)
{
    if (self->own_rd && core_read((CoreObject *)self->bus, self->off, self->bits, out))
        return 0;
    PyObject *r = PyObject_CallOneArg(self->rd, self->off_obj);
    if (r == NULL)
        return -1;
    unsigned long long v = PyLong_AsUnsignedLongLong(r);
    Py_DECREF(r);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static PyObject *
do_write(RegOpObject *self, uint64_t v)
{
    if (self->own_wr && core_write((CoreObject *)self->bus, self->off, self->bits, v))
        return PyLong_FromUnsignedLongLong(v);
    PyObject *value = PyLong_FromUnsignedLongLong(v);
    if (value == NULL)
        return NULL;
    PyObject *args[2] = {self->off_obj, value};
    PyObject *r = PyObject_Vectorcall(self->wr, args, 2, NULL);
    if (r == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    Py_DECREF(r);
    return value;
}

static PyObject *
make_value(RegOpObject *self, uint64_t v)
{
    size_t slot = (size_t)((v * 0x9E3779B97F4A7C15ull) >> 58);
    if (self->cache[slot].value != NULL && self->cache[slot].key == v)
        return Py_NewRef(self->cache[slot].value);
    PyObject *raw = PyLong_FromUnsignedLongLong(v);
    if (raw == NULL)
        return NULL;
    PyObject *value = PyObject_CallOneArg(self->vcls, raw);
    Py_DECREF(raw);
    if (value == NULL)
        return NULL;
    Py_XSETREF(self->cache[slot].value, Py_NewRef(value));
    self->cache[slot].key = v;
    return value;
}

/* Fold the named int fields into (clear, set); 0 when one of them needs the reference method. */
static int
fold_fields(RegOpObject *self, PyObject *const *values, PyObject *kwnames, uint64_t *clear, uint64_t *set)
{
    Py_ssize_t n = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    uint64_t c = 0, s = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *index = PyDict_GetItemWithError(self->names, PyTuple_GET_ITEM(kwnames, i));
        if (index == NULL || !PyLong_CheckExact(values[i])) {
            PyErr_Clear();
            return 0;
        }
        Py_ssize_t k = PyLong_AsSsize_t(index);
        unsigned long long v = PyLong_AsUnsignedLongLong(values[i]);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        if (v > self->max[k])
            return 0;
        c |= self->mask[k];
        s |= (uint64_t)v << self->lsb[k];
    }
    *clear = c;
    *set = s;
    return 1;
}

static PyObject *
RegOp_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    RegOpObject *self = (RegOpObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    uint64_t clear, set, old;
    switch (self->kind) {
    case OP_READ:
        if (nargs != 0 || kwnames != NULL)
            break;
        if (do_read(self, &old) < 0)
            return NULL;
        return make_value(self, old);
    case OP_WRITE:
        if (nargs != 0 || !fold_fields(self, args, kwnames, &clear, &set))
            break;
        return do_write(self, (self->base & ~clear) | set);
    case OP_MODIFY:
        if (nargs != 0 || !fold_fields(self, args, kwnames, &clear, &set))
            break;
        if (do_read(self, &old) < 0)
            return NULL;
        return do_write(self, (old & self->keep & ~clear) | (self->wo_reset & ~clear) | set);
    }
    return call_fallback(self, args, nargsf, kwnames);
}

static int
RegOp_traverse(RegOpObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->bus);
    Py_VISIT(self->rd);
    Py_VISIT(self->wr);
    Py_VISIT(self->fallback);
    Py_VISIT(self->vcls);
    Py_VISIT(self->names);
    for (int i = 0; i < CACHE_SIZE; i++)
        Py_VISIT(self->cache[i].value);
    return 0;
}

static int
RegOp_clear(RegOpObject *self)
{
    Py_CLEAR(self->bus);
    Py_CLEAR(self->rd);
    Py_CLEAR(self->wr);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->vcls);
    Py_CLEAR(self->names);
    Py_CLEAR(self->off_obj);
    for (int i = 0; i < CACHE_SIZE; i++)
        Py_CLEAR(self->cache[i].value);
    return 0;
}

static void
RegOp_dealloc(RegOpObject *self)
{
    PyObject_GC_UnTrack(self);
    RegOp_clear(self);
    PyMem_Free(self->lsb);
    PyMem_Free(self->mask);
    PyMem_Free(self->max);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
RegOp_get_doc(RegOpObject *self, void *Py_UNUSED(closure))
{
    return PyObject_GetAttrString(self->fallback, "__doc__");
}

static PyGetSetDef RegOp_getset[] = {
    {"__doc__", (getter)RegOp_get_doc, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RegOpType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mmiotk._accessors.RegisterOp",
    .tp_basicsize = sizeof(RegOpObject),
    .tp_dealloc = (destructor)RegOp_dealloc,
    .tp_vectorcall_offset = offsetof(RegOpObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_traverse = (traverseproc)RegOp_traverse,
    .tp_clear = (inquiry)RegOp_clear,
    .tp_getset = RegOp_getset,
};

static int
as_u64(PyObject *o, const char *what, uint64_t *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "register_op(): %s must be an int in [0, 2**64)", what);
        return -1;
    }
    *out = v;
    return 0;
}

/* register_op(kind, bus, rd, wr, offset, bits, vcls, keep, wo_reset, base, fields, fallback)
 * kind: "read", "write" or "modify"; fields: {name: (lsb, mask, max)}; rd/wr/vcls may be None where unused. */
static PyObject *
mod_register_op(PyObject *m, PyObject *args)
{
    const char *kind;
    PyObject *bus, *rd, *wr, *vcls, *keep, *wo_reset, *base, *fields, *fallback;
    Py_ssize_t off;
    int bits;
    if (!PyArg_ParseTuple(args, "sOOOniOOOOO!O:register_op", &kind, &bus, &rd, &wr, &off, &bits, &vcls, &keep,
                          &wo_reset, &base, &PyDict_Type, &fields, &fallback))
        return NULL;
    int k = strcmp(kind, "read") == 0 ? OP_READ : strcmp(kind, "write") == 0 ? OP_WRITE
          : strcmp(kind, "modify") == 0 ? OP_MODIFY : -1;
    if (k < 0 || (bits != 8 && bits != 16 && bits != 32 && bits != 64) || off < 0) {
        PyErr_Format(PyExc_ValueError, "register_op(): bad kind %s, width %d or offset %zd", kind, bits, off);
        return NULL;
    }
    RegOpObject *self = PyObject_GC_New(RegOpObject, &RegOpType);
    if (self == NULL)
        return NULL;
    self->vectorcall = RegOp_vectorcall;
    self->kind = k;
    self->bits = bits;
    self->off = off;
    self->bus = Py_NewRef(bus);
    self->rd = Py_NewRef(rd);
    self->wr = Py_NewRef(wr);
    self->vcls = Py_NewRef(vcls);
    self->fallback = Py_NewRef(fallback);
    self->names = PyDict_New();
    self->off_obj = PyLong_FromSsize_t(off);
    self->own_rd = core_is_own_accessor(rd, bus, bits, 0);
    self->own_wr = core_is_own_accessor(wr, bus, bits, 1);
    self->nfields = PyDict_GET_SIZE(fields);
    self->lsb = PyMem_Calloc((size_t)self->nfields + 1, sizeof(int));
    self->mask = PyMem_Calloc((size_t)self->nfields + 1, sizeof(uint64_t));
    self->max = PyMem_Calloc((size_t)self->nfields + 1, sizeof(uint64_t));
    memset(self->cache, 0, sizeof(self->cache));
    PyObject_GC_Track(self);
    if (self->names == NULL || self->off_obj == NULL || !self->lsb || !self->mask || !self->max
        || as_u64(keep, "keep", &self->keep) < 0 || as_u64(wo_reset, "wo_reset", &self->wo_reset) < 0
        || as_u64(base, "base", &self->base) < 0)
        goto fail;
    PyObject *name, *spec;
    Py_ssize_t pos = 0, i = 0;
    while (PyDict_Next(fields, &pos, &name, &spec)) {
        int lsb;
        PyObject *mask, *max;
        if (!PyArg_ParseTuple(spec, "iOO:register_op field", &lsb, &mask, &max) || lsb < 0 || lsb > 63
            || as_u64(mask, "a field mask", &self->mask[i]) < 0 || as_u64(max, "a field max", &self->max[i]) < 0)
            goto fail;
        self->lsb[i] = lsb;
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || PyDict_SetItem(self->names, name, index) < 0) {
            Py_XDECREF(index);
            goto fail;
        }
        Py_DECREF(index);
        i++;
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

/* --- FieldGetter ------------------------------------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    int lsb;
    uint64_t mask;
    PyObject *name;
} FieldGetterObject;

static PyObject *
FieldGetter_get(FieldGetterObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None)
        return Py_NewRef((PyObject *)self);
    unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromUnsignedLongLong((v >> self->lsb) & self->mask);
}

static int
FieldGetter_set(FieldGetterObject *self, PyObject *obj, PyObject *value)
{
    PyErr_Format(PyExc_AttributeError, "field %R of a register value cannot be set (values are snapshots; "
                 "use _replace())", self->name);
    return -1;
}

static PyObject *
FieldGetter_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *name, *mask;
    int lsb;
    static char *kwlist[] = {"name", "lsb", "mask", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UiO:FieldGetter", kwlist, &name, &lsb, &mask))
        return NULL;
    uint64_t m;
    if (lsb < 0 || lsb > 63 || as_u64(mask, "mask", &m) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "FieldGetter(): lsb must be in 0..63");
        return NULL;
    }
    FieldGetterObject *self = (FieldGetterObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->lsb = lsb;
    self->mask = m;
    self->name = Py_NewRef(name);
    return (PyObject *)self;
}

static void
FieldGetter_dealloc(FieldGetterObject *self)
{
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject FieldGetterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mmiotk._accessors.FieldGetter",
    .tp_basicsize = sizeof(FieldGetterObject),
    .tp_dealloc = (destructor)FieldGetter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FieldGetter(name, lsb, mask): the attribute of a register value giving (value >> lsb) & mask.",
    .tp_descr_get = (descrgetfunc)FieldGetter_get,
    .tp_descr_set = (descrsetfunc)FieldGetter_set,
    .tp_new = FieldGetter_new,
};

/* --- RegisterCore ------------------------------------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    PyObject *read_fn, *write_fn, *modify_fn;
} RegCoreObject;

static PyObject *
forward(PyObject *fn, const char *what, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (fn == NULL) {
        PyErr_Format(PyExc_TypeError, "register handle: %s() is not bound", what);
        return NULL;
    }
    if (Py_IS_TYPE(fn, &RegOpType))   /* the compiled op: no generic call dispatch */
        return RegOp_vectorcall(fn, args, (size_t)nargs, kwnames);
    return PyObject_Vectorcall(fn, args, (size_t)nargs, kwnames);
}

static PyObject *
RegCore_read(RegCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return forward(self->read_fn, "read", args, nargs, kwnames);
}

static PyObject *
RegCore_write(RegCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return forward(self->write_fn, "write", args, nargs, kwnames);
}

static PyObject *
RegCore_modify(RegCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return forward(self->modify_fn, "modify", args, nargs, kwnames);
}

static int
RegCore_traverse(RegCoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->read_fn);
    Py_VISIT(self->write_fn);
    Py_VISIT(self->modify_fn);
    return 0;
}

static int
RegCore_clear(RegCoreObject *self)
{
    Py_CLEAR(self->read_fn);
    Py_CLEAR(self->write_fn);
    Py_CLEAR(self->modify_fn);
    return 0;
}

static void
RegCore_dealloc(RegCoreObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    RegCore_clear(self);
    type->tp_free((PyObject *)self);
}

static PyMethodDef RegCore_methods[] = {
    {"read", (PyCFunction)(void (*)(void))RegCore_read, METH_FASTCALL | METH_KEYWORDS,
     "read() -> the register's value (a RegisterValue): one access."},
    {"write", (PyCFunction)(void (*)(void))RegCore_write, METH_FASTCALL | METH_KEYWORDS,
     "write(value=None, **fields) -> the value written: fields not named are at their write base."},
    {"modify", (PyCFunction)(void (*)(void))RegCore_modify, METH_FASTCALL | METH_KEYWORDS,
     "modify(**fields) -> the value written: a read-modify-write of the named fields."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef RegCore_members[] = {
    {"_read_fn", T_OBJECT_EX, offsetof(RegCoreObject, read_fn), 0, "what read() calls"},
    {"_write_fn", T_OBJECT_EX, offsetof(RegCoreObject, write_fn), 0, "what write() calls"},
    {"_modify_fn", T_OBJECT_EX, offsetof(RegCoreObject, modify_fn), 0, "what modify() calls"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject RegCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mmiotk._accessors.RegisterCore",
    .tp_basicsize = sizeof(RegCoreObject),
    .tp_dealloc = (destructor)RegCore_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The base of compiled register handles: read/write/modify forward to the callables bound in.",
    .tp_traverse = (traverseproc)RegCore_traverse,
    .tp_clear = (inquiry)RegCore_clear,
    .tp_methods = RegCore_methods,
    .tp_members = RegCore_members,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef register_methods[] = {
    {"register_op", mod_register_op, METH_VARARGS,
     "register_op(kind, bus, rd, wr, offset, bits, vcls, keep, wo_reset, base, fields, fallback): a handle's "
     "compiled read(), write(**fields) or modify(**fields)."},
    {NULL, NULL, 0, NULL},
};

int
register_ops_init(PyObject *module)
{
    if (PyType_Ready(&RegOpType) < 0 || PyType_Ready(&FieldGetterType) < 0 || PyType_Ready(&RegCoreType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "FieldGetter", (PyObject *)&FieldGetterType) < 0
        || PyModule_AddObjectRef(module, "RegisterCore", (PyObject *)&RegCoreType) < 0
        || PyModule_AddObjectRef(module, "RegisterOp", (PyObject *)&RegOpType) < 0)
        return -1;
    return PyModule_AddFunctions(module, register_methods);
}
