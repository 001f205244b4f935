"""Split one training iteration's cost on the GPU: data loading alone vs model+loss step alone."""
import sys, time, torch
from das_core.config import load_train_config, parse_overrides
from das_core.data.dataset import DASDataset, collate, AspectRatioBatchSampler
from das_core.model.das import DAS
from das_core.losses.criterion import DASLoss
from das_core.targets import assign_targets
import functools

data = sys.argv[1]
cfg = load_train_config("config/train/synthetic_r18.yaml", parse_overrides(["model.depth_factor=300.0"]))
mc = cfg.model
ds = DASDataset([data], mc, cfg.augment, train=True)
bs = 32
sampler = AspectRatioBatchSampler(ds.group_flags, bs, shuffle=True, seed=0, rank=0, world_size=1, drop_last=True)
for nw in (14,):
    dl = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=nw, collate_fn=functools.partial(collate, size_divisor=32), persistent_workers=False, pin_memory=True)
    it = iter(dl); next(it); t = time.perf_counter(); n = 0
    for _ in range(15):
        b = next(it); n += b["images"].shape[0]
    print(f"loader workers={nw}: {n / (time.perf_counter() - t):.0f} img/s", flush=True)
batch = b
dev = torch.device("cuda")
torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
for bench in (False, True):
    torch.backends.cudnn.benchmark = bench
    model = DAS.from_config(mc).to(dev).train(); crit = DASLoss.from_config(mc).to(dev)
    opt = torch.optim.AdamW(list(model.parameters()) + list(crit.parameters()), lr=1e-4)
    imgs = batch["images"].to(dev)
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(imgs)
        sizes = [tuple(c.shape[-2:]) for c in out.cls_logits]
        t0 = time.perf_counter(); tg = assign_targets(batch["gts"], sizes, out.strides, mc, device=dev); torch.cuda.synchronize(); t1 = time.perf_counter()
        loss = crit(out, tg)["loss"]; opt.zero_grad(); loss.backward(); opt.step()
        return t1 - t0
    for _ in range(3): step()
    torch.cuda.synchronize(); t = time.perf_counter(); tt = 0
    for _ in range(10): tt += step()
    torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 10
    print(f"cudnn.benchmark={bench}: step {dt*1000:.0f} ms ({bs/dt:.0f} img/s), of which targets {tt/10*1000:.0f} ms; input {tuple(imgs.shape)}", flush=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(2): step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25), flush=True)
