"""t2igan.data"""
