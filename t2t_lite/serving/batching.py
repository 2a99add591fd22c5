"""Dynamic batching: the inputs of requests that arrive together are decoded in one batch.

TensorFlow Serving's batching knobs, with its names:

- `max_batch_size`: the most inputs one call of the model decodes;
- `batch_timeout_micros`: how long a batch waits to fill, counted from when it could run
  (its oldest input has come and a batch thread is free); it waits no longer once no other
  request can come (`more_may_come`: t2t-serve says so when every open connection has its
  request waiting in the batcher already), so a lone client's request runs at once and a
  group of clients whose answers just went out is waited for until its last one is back;
- `max_enqueued_batches`: the queue holds at most max_batch_size * max_enqueued_batches
  inputs; a request that does not fit fails at once (`QueueFullError`, HTTP 503) instead of
  waiting behind a backlog;
- `num_batch_threads`: how many batches run at the same time (0: one per CPU core, as
  TensorFlow Serving's default is);
- `allowed_batch_sizes`: a batch is padded up to the next of these sizes (with copies of its
  shortest input, whose answers are dropped), so the model sees a few batch shapes, each
  prepared once, instead of every size up to max_batch_size (none by default: an export
  whose work varies with the batch size, as a decoder's dynamic search does, gains nothing).

A batch takes the oldest waiting input and others next to it in length: the waiting inputs
are ordered by length and the batch is a run of that order holding the oldest, at one end of
it where it can be, so that what is left is a run too. It takes its share of the waiting
inputs: all of them (up to max_batch_size) when it is the only batch thread free, half of them
when another is free too, and so on. So inputs of similar length decode together, a short
sentence does not wait for the longest one in the queue, and the inputs that arrived together
are spread over the batch threads that are free (each a core's worth of work: a decoding call
runs its steps one after another) instead of queueing for one of them. One thread never
leaves inputs waiting that it could take: a second call costs a whole pass of the decoding
loop, whose per-step work does not shrink with the batch. A batch whose call fails is retried
in halves, and a failing half in halves again, so a bad input fails alone, found in about
2 log2(batch size) calls, and the others in its batch still get their answers.
"""
import asyncio
import collections
import concurrent.futures
import math
import time

from t2t_lite.utils import hardware


def batch_threads(num_batch_threads):
  """How many batch threads `num_batch_threads` means (0: one per CPU core)."""
  return int(num_batch_threads) or hardware.cpu_cores()


class QueueFullError(Exception):
  """The batching queue cannot take a request's inputs now."""


_Item = collections.namedtuple("_Item", "text length future enqueued")


class Batcher:
  """Groups submitted inputs into batches for `run_batch` (called in worker threads).

  Args:
    run_batch: list of str -> list of results, one per input (a blocking call).
    max_batch_size, batch_timeout_micros, max_enqueued_batches, num_batch_threads,
      allowed_batch_sizes: see the module docstring (allowed_batch_sizes: increasing, the
      last one max_batch_size; None or empty: no padding).
    length: str -> int, an input's length for grouping.
    on_batch: optional callback(batch_size, seconds) after each batch.
    more_may_come: optional callable, False when no more inputs can come to fill a batch
      (then it runs without waiting for the rest of the timeout); None: always True.

  Call `start()` inside the event loop, `await submit(texts)` per request, and
  `await close()` to finish what is queued and stop.
  """

  def __init__(self, run_batch, max_batch_size=32, batch_timeout_micros=10000,
               max_enqueued_batches=16, num_batch_threads=0, allowed_batch_sizes=None,
               length=len, on_batch=None, more_may_come=None):
    if max_batch_size < 1 or max_enqueued_batches < 1 or num_batch_threads < 0:
      raise ValueError("max_batch_size and max_enqueued_batches must be >= 1, "
                       "num_batch_threads >= 0.")
    if batch_timeout_micros < 0:
      raise ValueError("batch_timeout_micros must be >= 0.")
    allowed = list(allowed_batch_sizes or ())
    if allowed and (allowed != sorted(set(allowed)) or allowed[0] < 1 or
                    allowed[-1] != max_batch_size):
      raise ValueError("allowed_batch_sizes must increase and end with max_batch_size (%d), "
                       "not %s" % (max_batch_size, allowed))
    self.max_batch_size = max_batch_size
    self.allowed_batch_sizes = allowed
    self.capacity = max_batch_size * max_enqueued_batches
    self._timeout = batch_timeout_micros / 1e6
    self._run_batch = run_batch
    self._length = length
    self._on_batch = on_batch
    self._more_may_come = more_may_come
    self.num_batch_threads = batch_threads(num_batch_threads)
    self._busy = 0  # batch threads running a batch
    self._open_requests = 0  # submitted requests not yet answered
    self._pending = collections.deque()
    self._running = set()
    self._closing = False
    self._no_wait = False
    self._wakeup = None
    self._slots = None
    self._task = None
    self._executor = None

  def padded_size(self, size):
    """The batch size the model is called with for `size` inputs."""
    return next((allowed for allowed in self.allowed_batch_sizes if allowed >= size), size)

  def _call(self, texts):
    """run_batch on `texts` padded to an allowed size (copies of the shortest input)."""
    padding = self.padded_size(len(texts)) - len(texts)
    if padding:
      texts = texts + [min(texts, key=self._length)] * padding
    return list(self._run_batch(texts))[:len(texts) - padding]

  @property
  def open_requests(self):
    """How many submitted requests still have inputs waiting or decoding."""
    return self._open_requests

  @property
  def queued(self):
    """How many inputs wait for a batch."""
    return len(self._pending)

  def start(self):
    self._wakeup = asyncio.Event()
    self._slots = asyncio.Semaphore(self.num_batch_threads)
    self._executor = concurrent.futures.ThreadPoolExecutor(
        self.num_batch_threads, thread_name_prefix="t2t-serve-batch")
    self._task = asyncio.get_running_loop().create_task(self._loop())

  def submit(self, texts):
    """Enqueues `texts` (a list of str); returns an awaitable of their results in order,
    where a failed input's result is its exception.

    Raises:
      QueueFullError: the queue cannot take them all now (nothing is enqueued).
    """
    if self._closing:
      raise QueueFullError("the server is shutting down")
    if len(self._pending) + len(texts) > self.capacity:
      raise QueueFullError(
          "the batching queue is full (%d of %d inputs waiting, max_batch_size * "
          "max_enqueued_batches); retry later" % (len(self._pending), self.capacity))
    loop = asyncio.get_running_loop()
    now = time.monotonic()
    futures = []
    self._open_requests += bool(texts)
    left = [len(texts)]

    def input_done(future):
      del future
      left[0] -= 1
      if not left[0]:
        self._open_requests -= 1

    for text in texts:
      future = loop.create_future()
      # Runs (call_soon) before the batch loop resumes on the slot the batch frees.
      future.add_done_callback(input_done)
      self._pending.append(_Item(text, self._length(text), future, now))
      futures.append(future)
    self._wakeup.set()
    return asyncio.gather(*futures, return_exceptions=True)

  def _take(self, oldest, size):
    """`size` waiting inputs, in queue order: a run of them in length order that holds the
    oldest, at an end of that order where one holds it (what is left is then a run too),
    else the run of the least spread in length."""
    ordered = sorted(self._pending, key=lambda item: (item.length, item.enqueued))
    size = min(size, len(ordered))
    at = next(i for i, item in enumerate(ordered) if item is oldest)
    starts = range(max(0, at - size + 1), min(at, len(ordered) - size) + 1)
    spread = lambda s: ordered[s + size - 1].length - ordered[s].length  # noqa: E731
    ends = [s for s in (0, len(ordered) - size) if s in starts]
    start = min(ends or starts, key=spread)
    chosen = {id(item) for item in ordered[start:start + size]}
    batch = [item for item in self._pending if id(item) in chosen]
    self._pending = collections.deque(
        item for item in self._pending if id(item) not in chosen)
    return batch

  async def _loop(self):
    while True:
      await self._slots.acquire()
      free = time.monotonic()
      while not self._pending:
        if self._closing:
          self._slots.release()
          return
        self._wakeup.clear()
        await self._wakeup.wait()
      oldest = self._pending[0]
      # The batch may wait to fill for the timeout from when it could run: after the oldest
      # input came, and after a batch thread was free for it. Under load, inputs wait while
      # the model decodes, so a deadline from their arrival alone has passed by then, and
      # the clients whose answers just went out could never join the next batch.
      deadline = max(oldest.enqueued, free) + self._timeout
      while (not (self._closing or self._no_wait) and
             len(self._pending) < self.max_batch_size):
        if self._more_may_come is not None and not self._more_may_come():
          break
        left = deadline - time.monotonic()
        if left <= 0:
          break
        self._wakeup.clear()
        try:
          await asyncio.wait_for(self._wakeup.wait(), left)
        except asyncio.TimeoutError:
          break
      # This batch's share of what waits: the free batch threads (this one included) split it.
      free = self.num_batch_threads - self._busy
      share = min(self.max_batch_size, math.ceil(len(self._pending) / free))
      batch = self._take(oldest, share)
      self._busy += 1
      task = asyncio.get_running_loop().create_task(self._run(batch))
      self._running.add(task)
      task.add_done_callback(self._running.discard)

  async def _run(self, batch):
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
      live = [item for item in batch if not item.future.done()]  # not cancelled meanwhile
      if not live:
        return
      outcomes = await self._outcomes(loop, live)
      for item, outcome in outcomes:
        if item.future.done():
          continue
        if isinstance(outcome, BaseException):
          item.future.set_exception(outcome)
        else:
          item.future.set_result(outcome)
      if self._on_batch is not None:
        self._on_batch(len(live), time.monotonic() - started)
    finally:
      self._busy -= 1
      self._slots.release()

  async def _outcomes(self, loop, items):
    """[(item, result or exception)] of one call on `items`; when it fails, of each half
    in turn, so the inputs that fail are found in a few calls and the others still get
    their answers."""
    try:
      results = await loop.run_in_executor(self._executor, self._call,
                                           [item.text for item in items])
      return list(zip(items, results))
    except Exception as e:  # pylint: disable=broad-except
      if len(items) == 1:
        return [(items[0], e)]
    half = (len(items) + 1) // 2
    return (await self._outcomes(loop, items[:half]) +
            await self._outcomes(loop, items[half:]))

  def flush(self):
    """From now on, batches run without waiting for the batch timeout (the server is
    draining: no more requests will come to fill them)."""
    self._no_wait = True
    if self._wakeup is not None:
      self._wakeup.set()

  async def close(self):
    """Stops taking inputs, decodes everything already queued (without waiting for the
    batch timeout) and waits for the running batches."""
    self._closing = True
    if self._wakeup is not None:
      self._wakeup.set()
    if self._task is not None:
      await self._task
    while self._running:
      await asyncio.gather(*list(self._running), return_exceptions=True)
    if self._executor is not None:
      self._executor.shutdown(wait=True)
