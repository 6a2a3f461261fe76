from metaflow import FlowSpec, Parameter, step


class A(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


from metaflow import FlowSpec, Parameter, step


class B(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    A()
    B()
