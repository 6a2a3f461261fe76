# expect: invalid Python
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    def helper(self):
        if True:
            if True:
                if True:
                    if True:
                        if True:
                            if True:
                                if True:
                                    if True:
                                        if True:
                                            if True:
                                                if True:
                                                    if True:
                                                        if True:
                                                            if True:
                                                                if True:
                                                                    if True:
                                                                        if True:
                                                                            if True:
                                                                                if True:
                                                                                    if True:
                                                                                        if True:
                                                                                            if True:
                                                                                                if True:
                                                                                                    if True:
                                                                                                        if True:
                                                                                                            if True:
                                                                                                                if True:
                                                                                                                    if True:
                                                                                                                        if True:
                                                                                                                            if True:
                                                                                                                                if True:
                                                                                                                                    if True:
                                                                                                                                        if True:
                                                                                                                                            if True:
                                                                                                                                                if True:
                                                                                                                                                    if True:
                                                                                                                                                        if True:
                                                                                                                                                            if True:
                                                                                                                                                                if True:
                                                                                                                                                                    if True:
                                                                                                                                                                        if True:
                                                                                                                                                                            if True:
                                                                                                                                                                                if True:
                                                                                                                                                                                    if True:
                                                                                                                                                                                        if True:
                                                                                                                                                                                            if True:
                                                                                                                                                                                                if True:
                                                                                                                                                                                                    if True:
                                                                                                                                                                                                        if True:
                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                                                                                                                                                            if True:
                                                                                                                                                                                                                                                                                                                                                                                                                if True:
                                                                                                                                                                                                                                                                                                                                                                                                                    if True:
                                                                                                                                                                                                                                                                                                                                                                                                                        if True:
                                                                                                                                                                                                                                                                                                                                                                                                                            pass

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
