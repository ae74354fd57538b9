"""One model shared by many Python threads."""

import threading

import sentiment

TEXTS = [
    "a gorgeous, witty, seductive movie.",
    "the acting is terrible",
    "it is not a bad film",
    "an utterly charming and hilarious film that reminded me of why i love movies",
    "too long",
    "a masterpiece four years in the making",
    "the plot is nothing but boilerplate clichés",
    "whatever",
]


def run_threads(count, target):
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)


def test_concurrent_classify_equals_serial(model):
    expected = model.classify(TEXTS, batch_size=3)
    results = [None] * 8
    errors = []

    def work(i):
        try:
            results[i] = [model.classify(TEXTS, batch_size=3) for _ in range(3)]
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(e)

    run_threads(8, work)
    assert not errors
    for per_thread in results:
        assert per_thread == [expected] * 3


def test_mixed_concurrent_calls(model):
    errors = []

    def work(i):
        try:
            if i % 3 == 0:
                model.tokenize(TEXTS)
            elif i % 3 == 1:
                model.evaluate(texts=TEXTS, labels=[1, 0, 1, 1, 0, 1, 0, 0])
            else:
                model.info
        except BaseException as e:
            errors.append(e)

    run_threads(6, work)
    assert not errors


def test_close_while_other_threads_classify(model_dir):
    m = sentiment.Model(model_dir)
    outcomes = []
    started = threading.Barrier(5)

    def work(i):
        started.wait()
        for _ in range(5):
            try:
                m.classify(TEXTS)
                outcomes.append("ok")
            except sentiment.MisuseError:
                outcomes.append("closed")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    started.wait()
    m.close()
    for t in threads:
        t.join(timeout=300)
    assert m.closed and len(outcomes) == 20
    assert set(outcomes) <= {"ok", "closed"}
