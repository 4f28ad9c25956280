"""The one list of built-in plugins: (kind, registry name, "module:object"). Nothing else names them."""

BUILTIN_PLUGINS: list[tuple[str, str, str]] = [
    ("model", "unet2d", "bench_suite.models.unet:UNet2d"),
    ("model", "unet3d", "bench_suite.models.unet:UNet3d"),
    ("neuron", "if", "bench_suite.neurons.integrate_fire:IFNeuron"),
    ("neuron", "mt", "bench_suite.neurons.multi_threshold:MTNeuron"),
    ("neuron", "ml", "bench_suite.neurons.multi_level:MLNeuron"),
    ("neuron", "rs", "bench_suite.neurons.real_spike:RSNeuron"),
    ("norm", "none", "bench_suite.norms.scaling:NoNorm"),
    ("norm", "lw", "bench_suite.norms.scaling:LayerWiseNorm"),
    ("norm", "cw", "bench_suite.norms.scaling:ConnectionWiseNorm"),
    ("trainer", "ann", "bench_suite.trainers.ann:ANNTrainer"),
    ("trainer", "conv", "bench_suite.trainers.conversion:ConversionTrainer"),
    ("trainer", "asf", "bench_suite.trainers.asf:ASFTrainer"),
    ("trainer", "dt", "bench_suite.trainers.direct:DirectTrainer"),
    ("dataset", "demo-vessels", "bench_suite.datasets.demo:DemoVessels"),
    ("dataset", "demo-denoise", "bench_suite.datasets.demo:DemoDenoise"),
]
