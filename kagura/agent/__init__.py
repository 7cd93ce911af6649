"""@agent and @tool (being built)."""


def agent(*args, **kwargs):  # replaced by the agent runtime
    raise NotImplementedError


def tool(*args, **kwargs):  # replaced by the agent runtime
    raise NotImplementedError
