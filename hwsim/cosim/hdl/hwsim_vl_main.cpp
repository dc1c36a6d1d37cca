// The simulator main of every cocotb Verilator build (runner.py uses it in place of cocotb's own).
//
// Same scheduling contract with cocotb's GPI as cocotb's main: per time slot, evaluate until nothing is
// left to do, value-change callbacks after every evaluation and after every callback that may have
// written a signal, then ReadWrite, ReadOnly, the next time slot (the model's own events or a cocotb
// timer, whichever is first), NextSimTime and the timed callbacks. What differs is only the cost of a time
// slot in which no callback runs, the common case when the clock is in HDL and Python waits on one
// trigger per transaction. Everything the VPI layer holds besides signal values (the callback lists,
// the queued puts, the eval-needed flag) changes only inside a callback, since cocotb's Python runs
// nowhere else; so the loop counts the callbacks that ran (`epoch`) and asks the VPI layer again only
// when that count moved: queued puts are applied, the eval-needed flag read, the ReadWrite/ReadOnly
// lists checked and NextSimTime dispatched only after a callback ran since the last time; timed
// callbacks are dispatched only when one is due; and the value-change list is scanned once per
// evaluation (after the model ran: only then can a watched signal have moved). The context's time is
// kept current (Verilator's runtime otherwise asks sc_time_stamp() on every query), and the model runs
// one thread (the default context would start a worker per CPU, idle for this single-threaded model,
// and a process with a second thread pays for locking in every malloc and VerilatedMutex).
// On the virtio-blk controller, cocotb's main spent about a fifth of a QD1 read in this per-slot
// bookkeeping (docs/performance.md).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#if VM_TRACE && VM_TRACE_FST
#include "verilated_fst_c.h"
using TraceFile = VerilatedFstC;
#elif VM_TRACE
#include "verilated_vcd_c.h"
using TraceFile = VerilatedVcdC;
#endif

extern "C" void vlog_startup_routines_bootstrap(void);  // libcocotbvpi_verilator: loads cocotb

static uint64_t sim_time = 0;
double sc_time_stamp() { return static_cast<double>(sim_time); }

namespace {

#if VM_TRACE
TraceFile* trace_file = nullptr;
#endif

uint64_t epoch = 1;  // bumped whenever callbacks ran (the start-of-simulation ones count as one)

// Callbacks of `reason`; true (and the epoch moved on) if any ran.
bool call(uint32_t reason) {
    if (!VerilatedVpi::callCbs(reason)) return false;
    ++epoch;
    return true;
}

// Value-change callbacks until none fires any more (a callback may write signals that others watch);
// true (and the epoch moved on) if any ran.
bool settle() {
    if (!VerilatedVpi::callValueCbs()) return false;
    while (VerilatedVpi::callValueCbs()) {
    }
    ++epoch;
    return true;
}

// The eval-needed flag, read and cleared: the evaluation it asks for comes next.
bool take_eval_needed() {
    const bool needed = VerilatedVpi::evalNeeded();
    VerilatedVpi::clearEvalNeeded();
    return needed;
}

void finish() {
    VerilatedVpi::callCbs(cbEndOfSimulation);
#if VM_TRACE
    if (trace_file) trace_file->close();
#endif
}

}  // namespace

int main(int argc, char** argv) {
    const char* trace_name = VM_TRACE_FST ? "dump.fst" : "dump.vcd";
    bool trace_on = false;
    for (int i = 1; i < argc; i++) {
        const std::string arg = argv[i];
        if (arg == "--trace") trace_on = true;
        else if (arg == "--trace-file" && i + 1 < argc) trace_name = argv[++i];
    }
    VerilatedContext* const context = Verilated::threadContextp();
    context->threads(1);
    context->commandArgs(argc, argv);
    const std::unique_ptr<Vtop> top{new Vtop{""}};
    Verilated::fatalOnVpiError(false);  // cocotb's system tasks are not Verilator's
#if VM_TRACE
    Verilated::traceEverOn(true);
    if (trace_on) {
        trace_file = new TraceFile;
        top->trace(trace_file, 99);
        trace_file->open(trace_name);
    }
#else
    (void)trace_on;
    (void)trace_name;
#endif
    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void*) { finish(); }, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle();

    const uint64_t never = ~0ULL;
    uint64_t synced = 0;      // epoch when the queued puts were last applied (no callback since: none queued)
    uint64_t listed = 0;      // epoch when has_rw and has_ro were read
    uint64_t next_called = 0; // epoch when NextSimTime was last dispatched (none registered since then)
    uint64_t delay_checked = 0;  // epoch when the current list of timed callbacks was last checked
    bool has_rw = false, has_ro = false;
    // Apply the puts callbacks queued since the last time (none when no callback ran); true if there were.
    auto apply_puts = [&](bool clear_eval_needed) {
        if (synced == epoch) return false;
        if (clear_eval_needed) VerilatedVpi::clearEvalNeeded();
        VerilatedVpi::doInertialPuts();
        synced = epoch;
        return true;
    };
    while (!Verilated::gotFinish()) {
        bool again;
        do {
            do {
                top->eval_step();
                // callbacks ran since the last evaluation: it has seen their puts, apply the ones queued
                bool check = apply_puts(true);  // the eval-needed flag may be set
                if (settle()) check = true;
                again = check && take_eval_needed();
            } while (again);
            if (listed != epoch) {
                has_rw = VerilatedVpi::hasCbs(cbReadWriteSynch);
                has_ro = VerilatedVpi::hasCbs(cbReadOnlySynch);
                listed = epoch;
            }
            if (has_rw) call(cbReadWriteSynch);
            bool check = apply_puts(false);  // those a value-change or ReadWrite callback queued
            if (settle()) check = true;
            again = check && take_eval_needed();
        } while (again);
        top->eval_end_step();
        if (listed != epoch) {
            has_ro = VerilatedVpi::hasCbs(cbReadOnlySynch);
            has_rw = VerilatedVpi::hasCbs(cbReadWriteSynch);
            listed = epoch;
        }
        if (has_ro) call(cbReadOnlySynch);
#if VM_TRACE
        if (trace_file) trace_file->dump(sim_time);
#endif
        const uint64_t next_model = top->eventsPending() ? top->nextTimeSlot() : never;
        const uint64_t next = std::min<uint64_t>(next_model, VerilatedVpi::cbNextDeadline());
        if (next == never) break;  // nothing scheduled any more: the simulation is over
        sim_time = next;
        context->time(next);
        if (next_called != epoch) {  // a cbNextSimTime is registered only from a callback
            next_called = epoch;
            if (call(cbNextSimTime)) settle();
        }
        // Timed callbacks only when one is due: its time has come (the deadline is read again after
        // NextSimTime's callbacks, which may have registered one), or, after callbacks ran, one that any
        // callCbs since then moved to the current list. Otherwise callCbs would walk the future list for
        // nothing.
        const bool moved = delay_checked != epoch && VerilatedVpi::hasCbs(cbAfterDelay);
        delay_checked = epoch;
        if ((moved || VerilatedVpi::cbNextDeadline() <= next) && call(cbAfterDelay)) settle();
    }
    top->final();
    finish();
    return context->errorCount() > 0 ? 1 : 0;
}
