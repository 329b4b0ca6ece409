"""hardwire.compiler: the pipeline from program text to exact weights, one module per stage, in data order.

    text ──check/──▶ Program ──fuse──▶ Program ──lower──▶ block graph + schedule ──layout/wire──▶ weights
         ──artifact──▶ CompiledModel (safetensors)            and interpret: what a Program means

pipeline.py calls the stages as a straight list; core/ holds the data types they share (the IR, errors, limits).
"""
