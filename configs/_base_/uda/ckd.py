# Stage 2: cross-path knowledge distillation (METHOD.md 2.5). The teacher
# checkpoints and prototypes are set by each task config (or wired by
# tools/ddb_pipeline.py).
uda = dict(
    type='CrossPathDistillation',
    teachers=[],               # [dict(name, checkpoint, prototypes, config)]
    proto_rectify=True,        # rectify each teacher with its prototypes
    rectify_on_prob=True,      # weights multiply probabilities (not logits)
    renormalize=False,         # original: no renormalisation (METHOD.md 6.6)
    proto_temperature=1.0,     # softmax(-distance / T)
    use_pl_weight=False,       # original: every target pixel weighs 1
    pseudo_threshold=0.968,    # used only with use_pl_weight
    pseudo_weight='batch_ratio',  # with use_pl_weight: one weight per batch
                               # (as Stage 1) or 'pixel' (confident only)
    soft_distill=False,        # unused KL variant
    soft_distill_w=0.1,
    soft_temperature=1.0,
    student_init='imagenet',   # original: fresh student; 'teacher' to warm-start
    jitter_prob=0.8,           # augmentation of the student's target crop
    jitter_strength=0.2,
    blur_prob=0.5,
    sigma_range=(0.15, 1.15),
    blur_mode='horizontal',    # original 1xK blur (METHOD.md 6.1)
    avg_non_ignore=False,
    monitor_pseudo_labels=False)  # score the teachers' labels against the
                               # target labels (monitoring only, no loss)
