# expect: cannot find module 'no_such_package'
from metaflow import step
from no_such_package.base import Base


class F(Base):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
