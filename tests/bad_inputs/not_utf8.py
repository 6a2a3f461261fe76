from metaflow import FlowSpec, step


class NotUtf8Flow(FlowSpec):
    @step
    def start(self):
        print("café")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NotUtf8Flow()
