"""Dynamic batching: the inputs of requests that arrive together are decoded in one batch.

TensorFlow Serving's batching knobs, with its names:

- `max_batch_size`: the most inputs one call of the model decodes;
- `batch_timeout_micros`: how long the oldest waiting input may wait for its batch to fill;
- `max_enqueued_batches`: the queue holds at most max_batch_size * max_enqueued_batches
  inputs; a request that does not fit fails at once (`QueueFullError`, HTTP 503) instead of
  waiting behind a backlog;
- `num_batch_threads`: how many batches run at the same time.

Inputs are grouped by length: a batch takes the oldest waiting input and, closest in length
first, only inputs that keep the batch's longest input at most twice its shortest, so a short
sentence never decodes padded to the longest one in the queue (a window around the oldest
input's length rather than fixed buckets, so that inputs either side of a bucket boundary
still share a batch). A batch whose call fails is retried one input at a time, so one
bad input fails alone and the others in its batch still get their answers.
"""
import asyncio
import collections
import concurrent.futures
import time


class QueueFullError(Exception):
  """The batching queue cannot take a request's inputs now."""


def similar_lengths(shortest, longest):
  """Whether inputs of these lengths may share a batch: the longest at most twice the
  shortest."""
  return longest <= 2 * max(1, shortest)


_Item = collections.namedtuple("_Item", "text length future enqueued")


class Batcher:
  """Groups submitted inputs into batches for `run_batch` (called in worker threads).

  Args:
    run_batch: list of str -> list of results, one per input (a blocking call).
    max_batch_size, batch_timeout_micros, max_enqueued_batches, num_batch_threads: see the
      module docstring.
    length: str -> int, an input's length for grouping.
    on_batch: optional callback(batch_size, seconds) after each batch.

  Call `start()` inside the event loop, `await submit(texts)` per request, and
  `await close()` to finish what is queued and stop.
  """

  def __init__(self, run_batch, max_batch_size=32, batch_timeout_micros=2000,
               max_enqueued_batches=16, num_batch_threads=1, length=len, on_batch=None):
    if max_batch_size < 1 or max_enqueued_batches < 1 or num_batch_threads < 1:
      raise ValueError("max_batch_size, max_enqueued_batches and num_batch_threads must be "
                       ">= 1.")
    if batch_timeout_micros < 0:
      raise ValueError("batch_timeout_micros must be >= 0.")
    self.max_batch_size = max_batch_size
    self.capacity = max_batch_size * max_enqueued_batches
    self._timeout = batch_timeout_micros / 1e6
    self._run_batch = run_batch
    self._length = length
    self._on_batch = on_batch
    self._threads = num_batch_threads
    self._pending = collections.deque()
    self._running = set()
    self._closing = False
    self._no_wait = False
    self._wakeup = None
    self._slots = None
    self._task = None
    self._executor = None

  @property
  def queued(self):
    """How many inputs wait for a batch."""
    return len(self._pending)

  def start(self):
    self._wakeup = asyncio.Event()
    self._slots = asyncio.Semaphore(self._threads)
    self._executor = concurrent.futures.ThreadPoolExecutor(
        self._threads, thread_name_prefix="t2t-serve-batch")
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
    for text in texts:
      future = loop.create_future()
      self._pending.append(_Item(text, self._length(text), future, now))
      futures.append(future)
    self._wakeup.set()
    return asyncio.gather(*futures, return_exceptions=True)

  def _similar_count(self, oldest):
    return sum(1 for item in self._pending
               if similar_lengths(min(item.length, oldest.length),
                                  max(item.length, oldest.length)))

  def _take(self, oldest):
    """The oldest input and, closest in length first, the inputs that keep the batch's
    lengths within a factor of two; in queue order."""
    shortest = longest = oldest.length
    chosen = {id(oldest)}
    others = sorted((item for item in self._pending if item is not oldest),
                    key=lambda item: (abs(item.length - oldest.length), item.enqueued))
    for item in others:
      if len(chosen) == self.max_batch_size:
        break
      low, high = min(shortest, item.length), max(longest, item.length)
      if similar_lengths(low, high):
        chosen.add(id(item))
        shortest, longest = low, high
    batch = [item for item in self._pending if id(item) in chosen]
    self._pending = collections.deque(
        item for item in self._pending if id(item) not in chosen)
    return batch

  async def _loop(self):
    while True:
      await self._slots.acquire()
      while not self._pending:
        if self._closing:
          self._slots.release()
          return
        self._wakeup.clear()
        await self._wakeup.wait()
      oldest = self._pending[0]
      deadline = oldest.enqueued + self._timeout
      while (not (self._closing or self._no_wait) and
             self._similar_count(oldest) < self.max_batch_size):
        left = deadline - time.monotonic()
        if left <= 0:
          break
        self._wakeup.clear()
        try:
          await asyncio.wait_for(self._wakeup.wait(), left)
        except asyncio.TimeoutError:
          break
      batch = self._take(oldest)
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
      try:
        results = await loop.run_in_executor(self._executor, self._run_batch,
                                             [item.text for item in live])
        outcomes = list(zip(live, results))
      except Exception as e:  # pylint: disable=broad-except
        if len(live) == 1:
          outcomes = [(live[0], e)]
        else:  # find the input that failed: the others still get their answers
          outcomes = [(item, await self._run_one(loop, item.text)) for item in live]
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
      self._slots.release()

  async def _run_one(self, loop, text):
    try:
      return (await loop.run_in_executor(self._executor, self._run_batch, [text]))[0]
    except Exception as e:  # pylint: disable=broad-except
      return e

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
