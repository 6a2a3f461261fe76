"""@retry, @catch and @timeout as Metaflow defines them.

flaky fails on attempts 0 and 1 (@retry(times=3)); caught always raises and @catch
keeps the exception once retries are exhausted; crashy kills its own process on the
first attempt (no exception to catch), so @catch's extra attempt runs its fallback;
slow overruns @timeout on attempt 0 and is retried.
"""
import os
import time

from metaflow import FlowSpec, catch, current, retry, step, timeout


class RetryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=3, minutes_between_retries=0)
    @step
    def flaky(self):
        self.flaky_attempt = current.retry_count
        print("flaky attempt", current.retry_count)
        if current.retry_count < 2:
            raise RuntimeError("transient failure %d" % current.retry_count)
        self.next(self.caught)

    @catch(var="failure")
    @retry(times=1, minutes_between_retries=0)
    @step
    def caught(self):
        self.caught_attempt = current.retry_count
        raise ValueError("always fails, attempt %d" % current.retry_count)
        self.next(self.crashy)  # pylint: disable=unreachable

    @catch(var="crash")
    @retry(times=0, minutes_between_retries=0)
    @step
    def crashy(self):
        if current.retry_count == 0:
            os._exit(3)  # the process dies: nothing for @catch to catch
        self.next(self.slow)

    @timeout(seconds=3)
    @retry(times=1, minutes_between_retries=0)
    @step
    def slow(self):
        self.slow_attempt = current.retry_count
        if current.retry_count == 0:
            time.sleep(30)
        self.next(self.end)

    @step
    def end(self):
        assert self.flaky_attempt == 2 and self.slow_attempt == 1
        assert self.failure.type == "builtins.ValueError"
        assert self.crash.type == "metaflow.plugins.catch_decorator.FailureHandledByCatch"


if __name__ == "__main__":
    RetryFlow()
