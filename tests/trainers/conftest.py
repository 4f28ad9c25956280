import pytest


@pytest.fixture
def class_weights_seen(monkeypatch):
    """``watch(module)``: the class weights of every ``task_loss`` call that trainer module makes, as a list
    filled while it trains (the loss itself is computed as before)."""

    def watch(module) -> list:
        seen = []
        plain_loss = module.task_loss

        def spy(task, output, target, loss=None, class_weights=None):
            seen.append(class_weights)
            return plain_loss(task, output, target, loss, class_weights)

        monkeypatch.setattr(module, "task_loss", spy)
        return seen

    return watch
