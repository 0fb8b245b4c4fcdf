# Evaluate any synthetic checkpoint on 50 held-out *source-look* images (the
# other configs evaluate on the target look), to measure the domain gap:
#   python tools/test.py configs/synthetic/eval_source_synthetic.py CKPT --eval mIoU
_base_ = ['./source_only_synthetic.py']
test_dataloader = dict(dataset=dict(
    _delete_=True, **_base_.synthetic_source_val))
