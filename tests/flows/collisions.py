"""Step names that collide with names generated code derives or uses itself."""

from metaflow import FlowSpec, step


class CollisionFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.x, foreach="items")

    @step
    def x(self):
        self.value = self.input * 10
        self.next(self.x_tasks)

    @step
    def x_tasks(self, inputs):  # the foreach's task list would be called x_tasks
        self.total = sum(i.value for i in inputs)
        self.next(self.flow)

    @step
    def flow(self):  # its StepSpec constant would be FLOW
        self.next(self.run, self.group)

    @step
    def run(self):  # the scope variable of generated code is `run`
        self.side = "run"
        self.next(self.join)

    @step
    def group(self):  # and its task group `group`
        self.side = "group"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.sides = sorted(i.side for i in inputs)
        self.total = inputs[0].total
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total, "sides", self.sides)


if __name__ == "__main__":
    CollisionFlow()
