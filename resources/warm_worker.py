"""Imported once, last, by the warm run launcher's fork server: importing it rehearses a small assurance.

Python's fork server can only import modules before it forks workers, so the rehearsal
(`assurance.demo.rehearsal`) runs on import here, and nowhere else imports this module. Libraries that
show progress bars (Great Expectations) would start tqdm's monitor thread, which a forked worker would
inherit as a dead thread holding nothing but a name: it is switched off here. The rehearsal runs with
native thread pools limited to one thread: a worker forked after GNU OpenMP started its team (scikit-learn's
gradient boosting, LightGBM, XGBoost) hangs at its own first parallel region; with no team in this
process, workers start their own. The objects loaded by then
are frozen out of the garbage collector, whose full collections would otherwise walk them in every worker
(0.7-1.3 s each, every few versions).
"""

import gc

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from assurance.demo.rehearsal import rehearse

tqdm.monitor_interval = 0  # no monitor thread: a fork copies only the thread that forks
with threadpool_limits(limits=1):  # see the docstring: no OpenMP team may exist when workers fork
    rehearse()
gc.collect()
gc.freeze()  # what is loaded now lives as long as every worker: their collections no longer walk it
