# Stage 1, region path: self-training with cut-mix bridging (METHOD.md 2.3).
uda = dict(
    type='SelfTraining',
    mask='cut',                # region path: a 0.4-area source box on the target
                               # ('none': no bridging, an ablation)
    cut_area=0.4,
    alpha=0.99,                # EMA: min(1 - 1/(i+1), 0.99), parameters only
    pseudo_threshold=0.968,    # confidence threshold of the pseudo-labels
    pseudo_weight='batch_ratio',  # original: share of confident pixels, one
                               # weight per batch (METHOD.md 6.2); 'pixel':
                               # confident pixels 1, the rest 0
    teacher_bn='train',        # original: EMA labels with batch-stat BN
    jitter_prob=0.8,           # colour jitter of the bridged image
    jitter_strength=0.2,
    blur_prob=0.5,             # Gaussian blur, sigma ~ U(0.15, 1.15)
    sigma_range=(0.15, 1.15),
    blur_mode='horizontal',    # original 1xK blur (METHOD.md 6.1); '2d' fixes it
    avg_non_ignore=False,      # original: mean over all pixels (METHOD.md 6.13)
    distilled_model_path=None,  # round 2: the round-1 CKD checkpoint
    monitor_pseudo_labels=False)  # score the pseudo-labels against the
                               # target labels (monitoring only, no loss)
