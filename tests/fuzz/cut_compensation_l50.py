"""An order saga: reserve stock, charge every item, ship; each undoable.

start -> reserve -> foreach items: charge -> collect -> ship -> end.
On Temporal, if a step fails (or the run is cancelled), the @compensate methods of
the steps that started run last first: cancel_shipment, refund (one per charged
item), release. Under `python flow.py run` they never run.
"""
from metaflow import FlowSpec, Parameter, step

from mf_temporal_codegen import compensate


class OrderFlow(FlowSpec):
    """Reserve, charge per item, ship; compensations undo what ran."""

    items = Parameter("items", default="book,pen,lamp", help="Comma-separated items.")

    @step
    def start(self):
        """Split the order into items."""
        self.order = self.items.split(",")
        self.next(self.reserve)

    @step
    def reserve(self):
        """Reserve stock for the whole order."""
        self.reservation = "res-%d" % len(self.order)
        self.next(self.charge, foreach="order")

    @compensate("reserve")
    def release(self):
        """Give the reserved stock back."""
        self.released = self.reservation

    @step
    def charge(self):


if __name__ == "__main__":
    OrderFlow()
