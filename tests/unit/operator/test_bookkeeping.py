"""The per-object memory of the reconcile passes (reconcile/bookkeeping.py)."""

from __future__ import annotations

import threading

from boltz_operator.api import PredictionPhase
from boltz_operator.api.prediction import BoltzPredictionStatus
from boltz_operator.reconcile.bookkeeping import Bookkeeping
from boltz_operator.reconcile.status import Outcome

KIND = "BoltzPrediction"


def body(name: str = "p", uid: str = "u1", phase: str | None = None) -> dict:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": uid},
        "spec": {},
        **({"status": {"phase": phase}} if phase else {}),
    }


def written(phase: PredictionPhase) -> Outcome:
    return Outcome(phase=phase, status=BoltzPredictionStatus(phase=phase), status_written=True)


def test_a_pass_sees_the_status_this_process_wrote_not_the_lagging_index():
    book = Bookkeeping()
    assert book.with_own_writes(KIND, body(phase="Pending"))["status"] == {"phase": "Pending"}
    book.remember_write(KIND, body(), written(PredictionPhase.RUNNING))
    assert book.with_own_writes(KIND, body(phase="Pending"))["status"]["phase"] == "Running"
    # Another object of the same name (deleted and re-created: a new uid) starts from its own status.
    assert book.with_own_writes(KIND, body(uid="u2", phase="Pending"))["status"] == {"phase": "Pending"}


def test_a_pass_that_wrote_nothing_is_not_remembered():
    book = Bookkeeping()
    book.remember_write(KIND, body(), Outcome(phase=PredictionPhase.RUNNING, status=BoltzPredictionStatus()))
    assert book.sizes()["written"] == 0


def test_a_created_job_is_in_flight_until_the_index_shows_it():
    book, meta = Bookkeeping(), body()["metadata"]
    assert book.steps_in_flight(KIND, meta, {"predict": None}) == frozenset()
    book.remember_created(KIND, meta, Outcome(created_job=True, created_step="predict"))
    assert book.steps_in_flight(KIND, meta, {"predict": None}) == {"predict"}
    assert book.steps_in_flight(KIND, meta, {"predict": {"metadata": {"name": "p-predict"}}}) == frozenset()
    assert book.steps_in_flight(KIND, meta, {"predict": None}) == frozenset()  # delivered once: forgotten


def test_failed_pods_are_counted_once():
    book = Bookkeeping()
    assert book.new_failed_pods("ns", "p-predict", 0) == 0
    assert book.new_failed_pods("ns", "p-predict", 1) == 1
    assert book.new_failed_pods("ns", "p-predict", 1) == 0
    assert book.new_failed_pods("ns", "p-predict", 3) == 2
    book.forget_job("ns", "p-predict")
    assert book.sizes()["failed_pods_seen"] == 0


def test_one_lock_per_object_across_threads_and_everything_forgotten_with_it():
    book, locks = Bookkeeping(), []
    threads = [threading.Thread(target=lambda: locks.append(book.lock(KIND, "ns", "p"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(lock) for lock in locks}) == 1
    assert book.lock(KIND, "ns", "q") is not locks[0]
    meta = body()["metadata"]
    book.remember_write(KIND, body(), written(PredictionPhase.RUNNING))
    book.remember_created(KIND, meta, Outcome(created_job=True, created_step="predict"))
    book.forget(KIND, meta)
    assert book.sizes() == {"locks": 1, "written": 0, "in_flight": 0, "failed_pods_seen": 0}  # q's lock stays
