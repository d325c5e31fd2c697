"""Reference models: a small MLP and CNN (any user ``nn.Module`` works too), the CTR models, the text encoder."""

from erasekit.models.zoo import ARCHITECTURES, ModelSpec, build_model

__all__ = ["ARCHITECTURES", "ModelSpec", "build_model"]
